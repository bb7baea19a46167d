"""The event outbox: what changed, for the other parts of the pass system (webhooks and the pull feed).

``emit_event(session, type, account_id, data)`` adds one event in the caller's transaction, so the event
exists exactly when the change it reports was committed. Call it where the change is made:

    emit_event(session, "account.email_changed", account.id, {"account": account.account})

Ordering. Readers follow a cursor (``seq``), and a cursor over the primary key would skip events: on
PostgreSQL a transaction that took id 10 may commit after one that took id 11, and a reader that has
already moved past 11 would never see 10. So an event gets its ``seq`` only after it is committed:
``sequence_pending`` numbers the committed events that have none, in id order, continuing from the last
seq given. The one ``event_sequence`` row is updated first, and its lock (a row lock on PostgreSQL, the
write lock on SQLite) makes sequencers run one at a time; an event committed later gets a later seq, so
a reader past seq N never misses one. Events of one account are therefore numbered in the order their
transactions committed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.db import Database
from mailflow.models import Account, Application, ApplicationStatus, Binding, Event, EventSequence
from mailflow.timeutil import taipei

EVENT_TYPES = (
    "application.submitted",
    "application.approved",
    "application.rejected",
    "account.verified",
    "account.email_changed",
    "binding.confirmed",
    "binding.ended",
    "notification.sent",
    "notification.bounced",
    "notification.failed",
)
SEQUENCE_BATCH = 5000  # events numbered per statement round; a backlog takes several rounds
EVENTS = cast(Table, Event.__table__)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def emit_event(session: Session, type: str, account_id: int | None, data: dict[str, Any]) -> None:
    """Record that ``type`` happened (to ``account_id``'s records) in the caller's transaction. ``data`` is
    the event's JSON ``data``: plain values, the 帳號 (not our row ids) where an account is named."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    session.add(Event(public_id=new_event_id(), type=type, account_id=account_id, data=data))


def emit_events(session: Session, events: Iterable[tuple[str, int | None, dict[str, Any]]]) -> int:
    """Several events at once (one executemany), for the dispatch's grouped recording."""
    rows = [{"public_id": new_event_id(), "type": type, "account_id": account_id, "data": data}
            for type, account_id, data in events]
    for row in rows:
        if row["type"] not in EVENT_TYPES:
            raise ValueError(f"unknown event type {row['type']!r}")
    if rows:
        session.execute(insert(EVENTS), rows)
    return len(rows)


def application_data(application: Application, account: Account) -> dict[str, Any]:
    """``data`` of the application.* events."""
    return {"application_id": application.id, "account": account.account, "ubn": application.ubn,
            "company_name": application.company_name}


def binding_data(session: Session, binding: Binding) -> dict[str, Any]:
    """``data`` of the binding.* events: both 帳號 and the bound company's 統一編號."""
    shared = session.get(Account, binding.shared_account_id)
    general = session.get(Account, binding.general_account_id)
    ubn = session.scalar(select(Application.ubn)
                         .where(Application.account_id == binding.general_account_id,
                                Application.status == ApplicationStatus.APPROVED)
                         .order_by(Application.id.desc()).limit(1))
    return {"binding_id": binding.id, "shared_account": shared.account if shared else None,
            "general_account": general.account if general else None, "ubn": ubn}


def sequence_pending(db: Database, limit: int = SEQUENCE_BATCH) -> int:
    """Give the committed events without a seq the next numbers, in id order; returns how many. Safe to
    call from any number of workers at once (see the module docstring)."""
    with db.session() as session:
        first = session.scalar(select(Event.id).where(Event.seq.is_(None)).limit(1))
        if first is None:
            return 0
    try:
        with db.session() as session:
            return _number(session, limit)
    except IntegrityError:
        return 0  # the one-row counter was being created by another worker: the next call numbers them


def _number(session: Session, limit: int) -> int:
    # The lock first: from here to the commit no other sequencer reads last_seq or the pending rows.
    locked = session.execute(update(EventSequence).where(EventSequence.id == 1)
                             .values(last_seq=EventSequence.last_seq)).rowcount  # type: ignore[attr-defined]
    if not locked:
        session.add(EventSequence(id=1, last_seq=0))
        session.flush()
    last = session.scalar(select(EventSequence.last_seq).where(EventSequence.id == 1)) or 0
    ids = list(session.scalars(select(Event.id).where(Event.seq.is_(None)).order_by(Event.id).limit(limit)))
    if not ids:
        return 0
    session.execute(update(EVENTS).where(EVENTS.c.id == bindparam("b_id")).values(seq=bindparam("b_seq")),
                    [{"b_id": event_id, "b_seq": last + n} for n, event_id in enumerate(ids, start=1)])
    session.execute(update(EventSequence).where(EventSequence.id == 1).values(last_seq=last + len(ids)))
    return len(ids)


@dataclass(frozen=True)
class PublicEvent:
    """An event as receivers see it: the webhook body and a feed entry."""

    seq: int
    type: str
    id: str
    timestamp: str
    data: dict[str, Any]
    account_id: int | None

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "timestamp": self.timestamp, "data": self.data}


def timestamp(moment: datetime) -> str:
    return taipei(moment).isoformat(timespec="milliseconds")


def events_after(session: Session, after: int, limit: int,
                 types: Iterable[str] | None = None) -> list[PublicEvent]:
    """Numbered events after seq ``after``, oldest first, at most ``limit`` (only ``types`` if given)."""
    query = (select(Event.seq, Event.type, Event.public_id, Event.created_at, Event.data, Event.account_id)
             .where(Event.seq.is_not(None), Event.seq > after).order_by(Event.seq).limit(limit))
    if types is not None:
        query = query.where(Event.type.in_(list(types)))
    return [PublicEvent(int(r.seq), r.type, r.public_id, timestamp(r.created_at), r.data or {}, r.account_id)
            for r in session.execute(query)]


def last_seq(session: Session) -> int:
    return int(session.scalar(select(EventSequence.last_seq).where(EventSequence.id == 1)) or 0)
