"""The suppression list and per-address delivery health.

An address on the list gets no more mail: `suppress` puts it there (hard bounce, complaint, five soft
bounces in a row, or staff) and turns its waiting outbox rows into `suppressed`; `lift` takes it off and
keeps the row as history. `record_soft_bounce` / `record_delivery` (`record_deliveries` for a group) keep
the count of soft bounces since the last successful delivery, which the inbound router compares with
SOFT_BOUNCE_LIMIT.

Every function works inside the caller's transaction and commits nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.db import savepoint
from mailflow.mail import addresses, states
from mailflow.mail.outbox import transition
from mailflow.models import AddressHealth, OutboxMessage, OutboxStatus, Suppression
from mailflow.timeutil import now

# Five soft bounces without a delivery in between make an address as good as a hard bounce.
SOFT_BOUNCE_LIMIT = 5


def address_key(address: str) -> str:
    """The one comparison key of an address (mailflow.mail.addresses.key): ｘ.tw and x.tw, 例え.jp and
    its xn-- form are one address on the list."""
    return addresses.key(address)


def active_suppression(session: Session, address: str) -> Suppression | None:
    return session.execute(
        select(Suppression)
        .where(Suppression.address_key == address_key(address), Suppression.lifted_at.is_(None))
        .order_by(Suppression.id)
        .limit(1)
    ).scalar_one_or_none()


def suppress(session: Session, address: str, reason: str, detail: str | None = None, *,
             actor: str = "system") -> Suppression:
    """Put ``address`` on the list (once: an active entry is returned as it is) and suppress the mails
    still waiting for it. Mails being sent right now are left to dispatch."""
    key = address_key(address)
    if not key:
        raise ValueError("suppress: empty address")
    entry = active_suppression(session, key)
    if entry is None:
        entry = Suppression(address_key=key, reason=reason[:40], detail=detail)
        session.add(entry)
        session.flush()
        audit.record(session, actor, "address_suppressed", "suppression", entry.id, address=key,
                     reason=reason)
    _suppress_waiting_mail(session, key, reason)
    return entry


def _suppress_waiting_mail(session: Session, key: str, reason: str) -> list[int]:
    rows = session.execute(
        select(OutboxMessage).where(OutboxMessage.to_key == key, OutboxMessage.status.in_(states.WAITING))
    ).scalars().all()
    for row in rows:
        transition(session, row, OutboxStatus.SUPPRESSED, detail=f"address suppressed: {reason}")
    session.flush()
    return [row.id for row in rows]


def lift(session: Session, address: str, by: str) -> int:
    """Take ``address`` off the list; the entries stay with who lifted them and when. The soft-bounce
    count starts again from zero. Returns how many entries were lifted."""
    key = address_key(address)
    moment = now()
    entries = session.execute(
        select(Suppression).where(Suppression.address_key == key, Suppression.lifted_at.is_(None))
    ).scalars().all()
    for entry in entries:
        entry.lifted_at = moment
        entry.lifted_by = by[:60]
        audit.record(session, by, "suppression_lifted", "suppression", entry.id, address=key)
    session.execute(update(AddressHealth).where(AddressHealth.address_key == key).values(soft_bounces=0))
    session.flush()
    return len(entries)


def _health(session: Session, key: str) -> AddressHealth:
    health = session.get(AddressHealth, key)
    if health is not None:
        return health
    try:
        # A savepoint: another worker may create the same row at the same moment.
        with savepoint(session):
            health = AddressHealth(address_key=key, soft_bounces=0)
            session.add(health)
    except IntegrityError:
        health = session.get(AddressHealth, key, populate_existing=True)
        assert health is not None
    return health


def record_delivery(session: Session, address: str) -> None:
    """A mail reached ``address``: its soft bounces no longer count (called by dispatch)."""
    key = address_key(address)
    if not key:
        return
    health = _health(session, key)
    health.soft_bounces = 0
    health.last_delivery_at = now()
    session.flush()


def record_deliveries(session: Session, addresses: Iterable[str]) -> int:
    """Many deliveries at once (dispatch records a group of sent mails this way): one upsert statement
    run for every distinct address, instead of a read, a savepoint and a write per mail. Returns how
    many distinct addresses were recorded."""
    # Distinct (one statement cannot upsert a row twice on PostgreSQL) and sorted (concurrent workers
    # take the row locks in the same order).
    keys = sorted({key for key in map(address_key, addresses) if key})
    if not keys:
        return 0
    moment = now()
    upsert = _insert_for(session)(AddressHealth.__table__)
    # ON CONFLICT works the same on SQLite and PostgreSQL; a row created by another worker in between
    # is simply updated.
    statement = upsert.on_conflict_do_update(
        index_elements=["address_key"],
        set_={"soft_bounces": 0, "last_delivery_at": upsert.excluded.last_delivery_at},
    )
    # The table, not the mapped class: a plain executemany, without the ORM's bulk machinery.
    session.execute(statement, [{"address_key": key, "soft_bounces": 0, "last_delivery_at": moment}
                                for key in keys])
    return len(keys)


def _insert_for(session: Session) -> Callable[..., Any]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def record_soft_bounce(session: Session, address: str) -> int:
    """Count one more soft bounce for ``address``; returns the count since the last delivery."""
    key = address_key(address)
    _health(session, key)
    # Incremented in SQL so two workers counting at once both count.
    session.execute(update(AddressHealth).where(AddressHealth.address_key == key)
                    .values(soft_bounces=AddressHealth.soft_bounces + 1, last_bounce_at=now()))
    health = session.get(AddressHealth, key, populate_existing=True)
    assert health is not None
    return health.soft_bounces
