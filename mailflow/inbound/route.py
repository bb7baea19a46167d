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
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, defer

from mailflow.accounts.lookup import account_by_address
from mailflow.context import AppContext
from mailflow.inbound import consequences, correlate, sender_auth
from mailflow.inbound.analysis import Analysis, analyze
from mailflow.inbound.sender_auth import SenderAuth
from mailflow.inbound.store import printable
from mailflow.models import InboundMessage, InboundStatus
from mailflow.timeutil import now

log = logging.getLogger(__name__)


def process(ctx: AppContext, inbound_id: int, understood: Understood | None = None) -> str:
    """Understand and act on stored mail ``inbound_id``; returns its final status. Never raises.
    ``understood``: its analysis and sender verdict when the caller has them already."""
    try:
        return _process(ctx, inbound_id, understood)
    except Exception as exc:
        log.exception("inbound %s: processing failed, quarantining", inbound_id)
        return _quarantine(ctx, inbound_id, f"processing failed: {type(exc).__name__}: {exc}"[:1000])


@dataclass(frozen=True)
class Understood:
    """What a mail says (analysis) and whether its sender is proven, worked out outside any transaction."""

    analysis: Analysis
    sender: SenderAuth | None


def understand(ctx: AppContext, raw: bytes) -> Understood:
    analysis = analyze(raw)
    # Judged outside any transaction: verifying DKIM may wait on DNS, and no pooled connection, row lock
    # or SQLite write lock should wait with it.
    return Understood(analysis, _judge_sender(ctx, raw, analysis))


def process_batch(ctx: AppContext, mails: Sequence[tuple[int, bytes]]) -> dict[int, str]:
    """Understand and act on the stored mails ``mails`` ((id, raw) pairs, the raw as stored): each is
    understood first, outside any transaction, then all of them are acted on in ONE transaction — one
    commit instead of one per mail (on PostgreSQL each commit waits for the WAL flush; bench/inbound.py).
    When that transaction fails for any mail, none of it is kept and each mail goes through `process` on
    its own, so a mail that cannot be processed is quarantined alone — unless the database itself is away
    or locked: then they all stay `stored` for a later pass. Returns each id's final status; never raises.
    A crash in between leaves the rows `stored`: process_pending finishes them."""
    understood: dict[int, Understood | None] = {}
    for inbound_id, raw in mails:
        try:
            understood[inbound_id] = understand(ctx, raw)
        except Exception:  # (a look-up failed): `process` tries again and quarantines it if it fails again
            log.warning("inbound %s: could not be understood in its batch", inbound_id, exc_info=True)
            understood[inbound_id] = None
    ready = {inbound_id: done for inbound_id, done in understood.items() if done is not None}
    try:
        statuses = _act_together(ctx, ready)
    except OperationalError:
        log.warning("inbound: the database failed a batch of %d mails; they stay stored for a later pass",
                    len(ready), exc_info=True)
        return dict.fromkeys(understood, InboundStatus.STORED)
    except Exception:
        log.warning("inbound: a batch of %d mails failed together; processing them one by one", len(ready),
                    exc_info=True)
        statuses = {}
    return {inbound_id: statuses.get(inbound_id) or process(ctx, inbound_id, done)
            for inbound_id, done in understood.items()}


def _act_together(ctx: AppContext, understood: dict[int, Understood]) -> dict[int, str]:
    if not understood:
        return {}
    ids = list(understood)
    with ctx.db.session() as session:
        # Claiming the rows first (as `_process` does one by one) makes a second worker on the same mails
        # wait, then find nothing to do.
        claimed = set(session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(ids), InboundMessage.status == InboundStatus.STORED)
            .values(status=InboundStatus.PROCESSED, processed_at=now())
            .returning(InboundMessage.id)
            .execution_options(synchronize_session=False)
        ).scalars())
        rows = {row.id: row for row in session.execute(
            select(InboundMessage).options(defer(InboundMessage.raw)).where(InboundMessage.id.in_(ids))
        ).scalars()}
        correlate.prefetch(ctx.settings, session,
                           [(rows[i], understood[i].analysis) for i in ids if i in claimed and i in rows])
        statuses: dict[int, str] = {}
        for inbound_id in ids:
            row = rows.get(inbound_id)
            if row is None:
                raise LookupError(f"no inbound mail {inbound_id}")
            if inbound_id in claimed:
                _act(ctx, session, row, understood[inbound_id])
            statuses[inbound_id] = row.status
        return statuses


PENDING_BATCH = 100


def process_pending(ctx: AppContext, limit: int = 500) -> int:
    """Process mails stored but never processed (a crash between storing and processing), in batches."""
    with ctx.db.session() as session:
        ids = session.execute(
            select(InboundMessage.id).where(InboundMessage.status == InboundStatus.STORED)
            .order_by(InboundMessage.id).limit(limit)
        ).scalars().all()
    for start in range(0, len(ids), PENDING_BATCH):
        with ctx.db.session() as session:
            mails = session.execute(
                select(InboundMessage.id, InboundMessage.raw)
                .where(InboundMessage.id.in_(ids[start:start + PENDING_BATCH]),
                       InboundMessage.status == InboundStatus.STORED)
                .order_by(InboundMessage.id)
            ).all()
        process_batch(ctx, [(mail.id, mail.raw or b"") for mail in mails])
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


def _process(ctx: AppContext, inbound_id: int, understood: Understood | None = None) -> str:
    if understood is None:
        with ctx.db.session() as session:
            row = session.get(InboundMessage, inbound_id)
            if row is None:
                raise LookupError(f"no inbound mail {inbound_id}")
            if row.status != InboundStatus.STORED:
                return row.status
            raw = row.raw or b""
        understood = understand(ctx, raw)
    with ctx.db.session() as session:
        # Claiming the row first makes a second worker on the same mail wait, then find nothing to do.
        claimed = session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.STORED)
            .values(status=InboundStatus.PROCESSED, processed_at=now())
        ).rowcount  # type: ignore[attr-defined]
        row = session.get(InboundMessage, inbound_id, options=[defer(InboundMessage.raw)])
        if row is None:
            raise LookupError(f"no inbound mail {inbound_id}")
        if claimed:
            _act(ctx, session, row, understood)
        return row.status


def _act(ctx: AppContext, session: Session, row: InboundMessage, understood: Understood) -> None:
    """The claimed ``row`` described, and quarantined or acted on, in the caller's transaction."""
    analysis = understood.analysis
    _describe(row, analysis, understood.sender)
    if analysis.quarantine_reason:
        row.status = InboundStatus.QUARANTINED
        row.quarantine_reason = analysis.quarantine_reason
        return
    consequences.act(ctx.settings, session, row, analysis)


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
