"""The dispatch claim stays index-only however long the queue is (issue 8: 1,000,000 queued mails)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from mailflow.context import AppContext
from mailflow.mail import states
from mailflow.models.mail import DUE_SQL

CLAIM = f"SELECT id FROM outbox WHERE {DUE_SQL} AND next_attempt_at <= :t ORDER BY next_attempt_at LIMIT 200"


def test_due_sql_names_exactly_the_due_statuses() -> None:
    assert "status IN ({})".format(", ".join(f"'{s}'" for s in states.DUE)) == DUE_SQL


def test_the_partial_index_holds_only_due_rows(ctx: AppContext) -> None:
    indexes = {ix["name"]: ix for ix in inspect(ctx.db.engine).get_indexes("outbox")}
    assert indexes["ix_outbox_due_at"]["column_names"] == ["next_attempt_at"]


def test_the_claim_reads_its_batch_off_the_partial_index(ctx: AppContext) -> None:
    """Two statuses ordered by time: a (status, time) index cannot return them in order, so without the
    partial index PostgreSQL scans and sorts the whole queue on every claim."""
    with ctx.db.engine.connect() as conn:
        if ctx.db.is_postgres:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table would favour a scan anyway
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + CLAIM), {"t": "2100-01-01"}))
            assert "ix_outbox_due_at" in plan and "Sort" not in plan, plan
        else:
            # SQLite weighs indexes by their statistics: a queue where most rows are already sent.
            conn.execute(text(
                "INSERT INTO outbox (template, to_address, to_key, to_name, context, message_id, status,"
                " attempts, next_attempt_at, created_at, autoreply_seen)"
                " VALUES ('registration-received', 'a@x.tw', 'a@x.tw', '', '{}', :mid, :status, 0,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0)"),
                [{"mid": f"<{i}@x>", "status": "queued" if i % 10 == 0 else "sent"} for i in range(2000)])
            conn.execute(text("ANALYZE"))
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + CLAIM),
                                                          {"t": "2100-01-01"}))
            assert "TEMP B-TREE" not in plan.upper(), plan
