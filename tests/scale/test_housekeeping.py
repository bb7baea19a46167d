"""Retention: old final mail goes with its events, raw inbound bytes are emptied after processing, old
login attempts go; everything younger, unfinished or unprocessed stays exactly as it was."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select

from mailflow.context import AppContext
from mailflow.models import (
    BounceRecipient,
    CapturedMail,
    InboundMessage,
    InboundStatus,
    OutboxEvent,
    OutboxMessage,
    OutboxStatus,
    SupportItem,
)
from mailflow.ops import housekeeping
from mailflow.timeutil import now

DAY = timedelta(days=1)


def add_mail(ctx: AppContext, status: str, created: datetime, n: int = 1) -> list[int]:
    ids: list[int] = []
    with ctx.db.session() as session:
        for _ in range(n):
            row = OutboxMessage(template="registration-received", to_address="a@example.com",
                                to_key="a@example.com", message_id=f"<{len(ids)}-{status}-{created}@t>",
                                status=status, created_at=created)
            session.add(row)
            session.flush()
            session.add(OutboxEvent(outbox_id=row.id, from_status="", to_status=status, at=created))
            ids.append(row.id)
    return ids


def add_inbound(ctx: AppContext, status: str, processed: datetime | None, raw: bytes = b"raw mail") -> int:
    with ctx.db.session() as session:
        row = InboundMessage(source="smtp", sha256=hashlib.sha256(raw + str(processed).encode()).hexdigest(),
                             size=len(raw), raw=raw, status=status, processed_at=processed,
                             header_message_id=f"<{status}{processed}@x>")
        session.add(row)
        session.flush()
        return row.id


def count(ctx: AppContext, model: type, *where: object) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def test_old_final_mail_is_deleted_in_batches_and_nothing_else(ctx: AppContext) -> None:
    old = now() - 401 * DAY
    young = now() - 399 * DAY
    old_sent = add_mail(ctx, OutboxStatus.SENT, old, n=7)
    old_failed = add_mail(ctx, OutboxStatus.FAILED, old, n=2)
    old_suppressed = add_mail(ctx, OutboxStatus.SUPPRESSED, old)
    kept = (add_mail(ctx, OutboxStatus.SENT, young, n=3) + add_mail(ctx, OutboxStatus.QUEUED, old)
            + add_mail(ctx, OutboxStatus.RETRY, old) + add_mail(ctx, OutboxStatus.SENDING, old))
    bounced = old_failed[0]
    with ctx.db.session() as session:
        inbound = InboundMessage(source="smtp", sha256="0" * 64, size=1, raw=b"x", outbox_id=bounced)
        session.add(inbound)
        session.flush()
        session.add(BounceRecipient(inbound_id=inbound.id, address="a@example.com", action="failed",
                                    hard=True, reason="userunknown", outbox_id=bounced))
        session.add(SupportItem(kind="hard_bounce", outbox_id=bounced, address="a@example.com"))

    report = housekeeping.run(ctx, batch=3)  # several batches, the last one partial

    assert report.outbox_deleted == len(old_sent) + len(old_failed) + len(old_suppressed)
    assert count(ctx, OutboxMessage) == len(kept)
    assert count(ctx, OutboxMessage, OutboxMessage.id.in_(kept)) == len(kept)
    assert count(ctx, OutboxEvent) == len(kept)
    # What pointed at the deleted mail stays, without the link.
    assert count(ctx, SupportItem, SupportItem.outbox_id.is_(None)) == 1
    assert count(ctx, BounceRecipient, BounceRecipient.outbox_id.is_(None)) == 1
    assert count(ctx, InboundMessage, InboundMessage.outbox_id.is_(None)) == 1
    assert housekeeping.run(ctx, batch=3).outbox_deleted == 0  # a second pass finds nothing


def test_raw_inbound_is_emptied_only_when_processed_long_enough_ago(ctx: AppContext) -> None:
    old = now() - 31 * DAY
    emptied = add_inbound(ctx, InboundStatus.PROCESSED, old)
    recent = add_inbound(ctx, InboundStatus.PROCESSED, now() - 29 * DAY)
    quarantined = add_inbound(ctx, InboundStatus.QUARANTINED, old)
    waiting = add_inbound(ctx, InboundStatus.STORED, None)

    assert housekeeping.run(ctx).raw_inbound_emptied == 1

    with ctx.db.session() as session:
        raws = {row.id: row.raw for row in session.scalars(select(InboundMessage))}
        kept_meta = session.get(InboundMessage, emptied)
        assert kept_meta is not None and kept_meta.size == len(b"raw mail")
    assert raws == {emptied: None, recent: b"raw mail", quarantined: b"raw mail", waiting: b"raw mail"}


def test_retention_days_come_from_the_settings(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(retention={"mail_days": 10, "raw_inbound_days": 2})
    add_mail(ctx, OutboxStatus.SENT, now() - 11 * DAY)
    add_mail(ctx, OutboxStatus.SENT, now() - 9 * DAY)
    add_inbound(ctx, InboundStatus.PROCESSED, now() - 3 * DAY)
    report = housekeeping.run(ctx)
    assert (report.outbox_deleted, report.raw_inbound_emptied) == (1, 1)


def test_old_captured_mail_goes(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        session.add_all([CapturedMail(mail_from="a@x", raw=b"x", received_at=now() - 401 * DAY),
                         CapturedMail(mail_from="a@x", raw=b"x", received_at=now() - DAY)])
    report = housekeeping.run(ctx)
    assert report.captured_deleted == 1
    assert count(ctx, CapturedMail) == 1
