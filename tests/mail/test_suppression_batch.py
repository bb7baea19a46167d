"""suppression.record_deliveries: many deliveries in one statement, same meaning as record_delivery."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.mail.suppression import record_deliveries, record_soft_bounce
from mailflow.models import AddressHealth


def test_a_group_of_deliveries_resets_counts_and_creates_missing_rows(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        for _ in range(3):
            record_soft_bounce(session, "a@example.com")
    with ctx.db.session() as session:
        # duplicates, case and blanks in one group: one row per address, blanks ignored
        assert record_deliveries(session, ["A@example.com", "a@example.com ", "b@example.com", "  "]) == 2
    with ctx.db.session() as session:
        rows = {h.address_key: h for h in session.scalars(select(AddressHealth))}
        assert set(rows) == {"a@example.com", "b@example.com"}
        assert rows["a@example.com"].soft_bounces == 0 and rows["a@example.com"].last_bounce_at is not None
        assert all(h.last_delivery_at is not None for h in rows.values())
        assert record_soft_bounce(session, "a@example.com") == 1  # counting starts again


def test_an_empty_group_changes_nothing(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        assert record_deliveries(session, []) == 0
        assert session.scalars(select(AddressHealth)).all() == []
