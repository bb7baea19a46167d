"""Retention: what mailflow stops keeping, and when.

- Outbox rows in a final state (sent, failed, suppressed) created more than ``retention.mail_days`` ago
  (default 400) are deleted with their events; inbound messages, bounce recipients and support items that
  pointed at them keep their own data and lose only the link. Captured development mail goes the same way.
- Processed inbound messages keep their metadata, but their raw bytes are emptied
  ``retention.raw_inbound_days`` (default 30) after processing. Quarantined and unprocessed ones keep
  their bytes: somebody still has to look at them.
- Failed-login rows older than a day (no throttling window looks back further), and request counters
  (mailflow.ratelimit) whose window closed a day ago.
- The Notifications API's records: a notification goes with its outbox row (a cascading foreign key);
  API key uses and events older than ``retention.mail_days`` are deleted.
- Company documents of rejected applications, ``storage.retention_days`` (default 180) after the decision
  (mailflow.ops.documents.purge_rejected; an audit event ``document.purged`` for each).

Everything goes in small batches, each its own short transaction, walking the primary key upwards, so a
run over a million rows never holds a long lock and never reads a row twice. The scheduler runs it as a
singleton job (one worker at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from mailflow import ratelimit
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.mail import states
from mailflow.models import (
    ApiKeyUse,
    BounceRecipient,
    CapturedMail,
    Event,
    InboundMessage,
    InboundStatus,
    OutboxEvent,
    OutboxMessage,
    SupportItem,
)
from mailflow.ops import documents
from mailflow.timeutil import now

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass
class RetentionReport:
    outbox_deleted: int = 0
    captured_deleted: int = 0
    raw_inbound_emptied: int = 0
    rate_counters_deleted: int = 0
    api_records_deleted: int = 0
    documents_purged: int = 0


def sweep(
    db: Database,
    key: InstrumentedAttribute[int],
    conditions: Sequence[ColumnElement[bool]],
    act: Callable[[Session, list[int]], object],
    batch: int = BATCH,
) -> int:
    """Apply ``act`` to the ids of rows matching ``conditions``, ``batch`` at a time in ascending key
    order, one transaction per batch; returns how many rows were handled."""
    last = 0
    total = 0
    while True:
        with db.session() as session:
            ids = list(session.scalars(
                select(key).where(key > last, *conditions).order_by(key).limit(batch)
            ))
            if not ids:
                return total
            act(session, ids)
        total += len(ids)
        last = ids[-1]
        if len(ids) < batch:
            return total


def _forget_outbox(session: Session, ids: list[int]) -> None:
    # Records kept longer than the mail (bounces, support items) lose only their link to it.
    for model in (InboundMessage, BounceRecipient, SupportItem):
        column: Any = model.outbox_id
        session.execute(update(model).where(column.in_(ids)).values(outbox_id=None))
    session.execute(delete(OutboxEvent).where(OutboxEvent.outbox_id.in_(ids)))
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))


def delete_old_mail(db: Database, days: int, batch: int = BATCH) -> int:
    # created_at decides: a mail reaches its final state within retry_give_up_hours of being queued,
    # far inside any retention period.
    cutoff = now() - timedelta(days=days)
    conditions = [OutboxMessage.status.in_(sorted(states.FINAL)), OutboxMessage.created_at < cutoff]
    return sweep(db, OutboxMessage.id, conditions, _forget_outbox, batch)


def delete_old_captured(db: Database, days: int, batch: int = BATCH) -> int:
    cutoff = now() - timedelta(days=days)
    return sweep(db, CapturedMail.id, [CapturedMail.received_at < cutoff],
                 lambda s, ids: s.execute(delete(CapturedMail).where(CapturedMail.id.in_(ids))), batch)


def empty_old_raw_inbound(db: Database, days: int, batch: int = BATCH) -> int:
    cutoff = now() - timedelta(days=days)
    conditions = [
        InboundMessage.status == InboundStatus.PROCESSED,
        InboundMessage.processed_at < cutoff,
        InboundMessage.raw.is_not(None),
    ]
    return sweep(db, InboundMessage.id, conditions,
                 lambda s, ids: s.execute(update(InboundMessage).where(InboundMessage.id.in_(ids))
                                          .values(raw=None)), batch)


def delete_old_rate_counters(db: Database) -> int:
    # One row per key (a client address), so one statement: there are never many.
    with db.session() as session:
        return ratelimit.prune(session)


def delete_old_api_records(db: Database, days: int, batch: int = BATCH) -> int:
    """API key uses and events older than ``days`` (a subscriber that has not taken an event by then
    never will: it was disabled long ago)."""
    cutoff = now() - timedelta(days=days)
    uses = sweep(db, ApiKeyUse.id, [ApiKeyUse.at < cutoff],
                 lambda s, ids: s.execute(delete(ApiKeyUse).where(ApiKeyUse.id.in_(ids))), batch)
    events = sweep(db, Event.id, [Event.created_at < cutoff],
                   lambda s, ids: s.execute(delete(Event).where(Event.id.in_(ids))), batch)
    return uses + events


def run(ctx: AppContext, batch: int = BATCH) -> RetentionReport:
    """One retention pass over every table it looks after."""
    retention = ctx.settings.retention
    report = RetentionReport(
        outbox_deleted=delete_old_mail(ctx.db, retention.mail_days, batch),
        captured_deleted=delete_old_captured(ctx.db, retention.mail_days, batch),
        raw_inbound_emptied=empty_old_raw_inbound(ctx.db, retention.raw_inbound_days, batch),
        rate_counters_deleted=delete_old_rate_counters(ctx.db),
        api_records_deleted=delete_old_api_records(ctx.db, retention.mail_days, batch),
        documents_purged=documents.purge_rejected(ctx),
    )
    if any(vars(report).values()):
        log.info("retention: %d mails deleted, %d captured mails deleted, %d raw inbound emptied, "
                 "%d API records deleted", report.outbox_deleted, report.captured_deleted,
                 report.raw_inbound_emptied, report.api_records_deleted)
    return report
