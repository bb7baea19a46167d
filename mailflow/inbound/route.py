"""The routing step of a received mail, after `store`: understand it, find what it answers, act on it.

`process(ctx, inbound_id)` reads one stored mail, understands it (mailflow.inbound.analysis), judges
its sender where a person's words are at stake (mailflow.inbound.sender_auth, outside any transaction),
then in one transaction finds the outbox mail it answers (mailflow.inbound.correlate: only proof acts),
applies the consequences (mailflow.inbound.consequences) and marks it processed or quarantined: the
consequences happen exactly once or not at all. It never raises: a failure quarantines the mail with the
reason, so no single mail can stop a poller.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from mailflow.context import AppContext
from mailflow.inbound import consequences, sender_auth
from mailflow.inbound.analysis import Analysis, analyze
from mailflow.inbound.sender_auth import SenderAuth
from mailflow.inbound.store import printable
from mailflow.models import InboundMessage, InboundStatus
from mailflow.support.items import account_by_address
from mailflow.timeutil import now

log = logging.getLogger(__name__)


def process(ctx: AppContext, inbound_id: int) -> str:
    """Understand and act on stored mail ``inbound_id``; returns its final status. Never raises."""
    try:
        return _process(ctx, inbound_id)
    except Exception as exc:
        log.exception("inbound %s: processing failed, quarantining", inbound_id)
        return _quarantine(ctx, inbound_id, f"processing failed: {type(exc).__name__}: {exc}"[:1000])


def process_pending(ctx: AppContext, limit: int = 500) -> int:
    """Process mails stored but never processed (a crash between storing and processing)."""
    with ctx.db.session() as session:
        ids = session.execute(
            select(InboundMessage.id).where(InboundMessage.status == InboundStatus.STORED)
            .order_by(InboundMessage.id).limit(limit)
        ).scalars().all()
    for inbound_id in ids:
        process(ctx, inbound_id)
    return len(ids)


def _quarantine(ctx: AppContext, inbound_id: int, reason: str) -> str:
    try:
        with ctx.db.session() as session:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.STORED)
                .values(status=InboundStatus.QUARANTINED, quarantine_reason=reason, processed_at=now())
            )
            status = session.execute(
                select(InboundMessage.status).where(InboundMessage.id == inbound_id)
            ).scalar_one_or_none()
        return status or InboundStatus.QUARANTINED
    except Exception:
        # The database is gone: the row stays `stored` and process_pending takes it up later.
        log.exception("inbound %s: could not record the quarantine", inbound_id)
        return InboundStatus.STORED


def _process(ctx: AppContext, inbound_id: int) -> str:
    with ctx.db.session() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"no inbound mail {inbound_id}")
        if row.status != InboundStatus.STORED:
            return row.status
        raw = row.raw or b""
    analysis = analyze(raw)
    # Judged outside any transaction: verifying DKIM may wait on DNS, and no pooled connection, row lock
    # or SQLite write lock should wait with it.
    sender = _judge_sender(ctx, raw, analysis)
    with ctx.db.session() as session:
        # Claiming the row first makes a second worker on the same mail wait, then find nothing to do.
        claimed = session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.STORED)
            .values(status=InboundStatus.PROCESSED, processed_at=now())
        ).rowcount  # type: ignore[attr-defined]
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"no inbound mail {inbound_id}")
        if not claimed:
            return row.status
        _describe(row, analysis, sender)
        if analysis.quarantine_reason:
            row.status = InboundStatus.QUARANTINED
            row.quarantine_reason = analysis.quarantine_reason
            return row.status
        consequences.act(ctx.settings, session, row, analysis)
        return row.status


def _judge_sender(ctx: AppContext, raw: bytes, analysis: Analysis) -> SenderAuth | None:
    """Whether the From address is proven, for the mails that reach customer service as a person's words
    (a reply, or an unrecognised mail from an applicant's address); None for the rest."""
    if analysis.quarantine_reason or analysis.kind not in ("reply", "other"):
        return None
    if analysis.kind == "other":
        with ctx.db.session() as session:
            if account_by_address(session, analysis.from_address) is None:
                return None
    return sender_auth.judge(raw, ctx.settings, from_address=analysis.from_address)


def _describe(row: InboundMessage, analysis: Analysis, sender: SenderAuth | None = None) -> None:
    row.kind = analysis.kind
    row.from_address = printable(analysis.from_address)[:320]
    row.subject = printable(analysis.subject)[:500]
    if sender is not None:
        row.sender_auth = sender.verdict
        row.sender_auth_detail = printable(sender.detail)[:300]
