"""Dispatch: the scheduler's tick that takes due outbox rows to a final state.

A tick reclaims rows whose lease expired (their worker died), then repeatedly claims a batch of due rows
(queued|retry, next_attempt_at <= the tick's start) as ``sending`` under a lease, renders each one, sends
it over one reused SMTP connection as its own transaction (MAIL FROM differs per mail), and records each
result as a persisted transition: 2xx sent, 4xx or a network error retry (exponential backoff with
jitter, failed after schedule.retry_give_up_hours), 5xx failed, a suppressed address suppressed.

Crash safety: claims and results are separate short transactions, never held open across SMTP. A crash
leaves at most the claimed batch in ``sending``; its lease expires and it is sent again. Stopping
(``request_stop``) ends the tick between two mails and hands the unsent claimed rows back.
"""

from __future__ import annotations

import contextlib
import logging
import random
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailflow.config import ScheduleSettings, Settings
from mailflow.context import AppContext
from mailflow.mail.outbox import transition
from mailflow.mail.render import Envelope, RenderError, render_bytes
from mailflow.mail.returnpath import make_return_path
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.timeutil import now

log = logging.getLogger(__name__)

STOP = threading.Event()
RECORD_EVERY = 50  # results are stored in groups: fewer commits, and a crash re-sends at most this many
LEASE_SAFETY = 0.8  # stop sending a batch once this share of its lease is used, so no one reclaims it live


def request_stop() -> None:
    """Ask running and future ticks to stop between two mails (the daemon calls this on shutdown)."""
    STOP.set()


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | retry | failed | suppressed
    code: int | None
    detail: str


@dataclass(frozen=True)
class Claimed:
    id: int
    from_status: str
    to_key: str
    envelope: Envelope


@dataclass
class TickReport:
    reclaimed: int = 0
    claimed: int = 0
    released: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        self.results[status] = self.results.get(status, 0) + 1


def classify(code: int, reply: bytes | str) -> Outcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{code} {text}".strip()
    if 200 <= code < 300:
        return Outcome(OutboxStatus.SENT, code, detail)
    if 500 <= code < 600:
        return Outcome(OutboxStatus.FAILED, code, detail)
    return Outcome(OutboxStatus.RETRY, code, detail)  # 4xx and anything unexpected: try again later


@lru_cache(maxsize=1)
def helo_name() -> str:
    return socket.getfqdn() or "localhost"


class SmtpLink:
    """One SMTP connection for a whole tick, opened on first use and reopened after a drop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        smtp = self.settings.smtp
        relay = smtp.mode == "relay"
        conn = smtplib.SMTP(smtp.host if relay else "127.0.0.1", smtp.port, local_hostname=helo_name(),
                            timeout=smtp.timeout_seconds)
        try:
            conn.ehlo()
            if relay and smtp.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if relay and smtp.username:
                conn.login(smtp.username, smtp.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self.drop()

    def send(self, sender: str, recipient: str, raw: bytes) -> Outcome:
        """One mail as its own SMTP transaction; never raises for SMTP or network trouble."""
        try:
            if self.conn is None:
                self.conn = self._open()
            return self._transaction(self.conn, sender, recipient, raw)
        except smtplib.SMTPResponseException as exc:  # e.g. a refused AUTH or DATA command
            self.drop()
            return classify(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:  # refused connection, drop, timeout, TLS
            self.drop()
            return Outcome(OutboxStatus.RETRY, None, f"network error: {type(exc).__name__}: {exc}")

    def _transaction(self, conn: smtplib.SMTP, sender: str, recipient: str, raw: bytes) -> Outcome:
        options: list[str] = []
        if not recipient.isascii():
            if not conn.has_extn("smtputf8"):
                return Outcome(OutboxStatus.FAILED, None, "the relay does not accept non-ASCII addresses")
            options.append("SMTPUTF8")
        for step in (lambda: conn.mail(sender, options), lambda: conn.rcpt(recipient)):
            code, reply = step()
            if code not in (250, 251):
                self._reset(code)
                return classify(code, reply)
        code, reply = conn.data(raw)
        if code == 421:
            self.drop()
        return classify(code, reply)

    def _reset(self, code: int) -> None:
        if code == 421:  # the server is closing the connection
            self.drop()
            return
        try:
            if self.conn is not None:
                self.conn.rset()
        except (OSError, smtplib.SMTPException):
            self.drop()


def retry_delay(schedule: ScheduleSettings, attempts: int,
                rand: Callable[[], float] = random.random) -> timedelta:
    """Doubling from retry_first_minutes, capped at retry_max_minutes, with ±20% jitter so the mails of
    one outage do not all come back in the same second."""
    minutes = schedule.retry_first_minutes * 2 ** max(attempts - 1, 0)
    minutes = min(minutes * (0.8 + 0.4 * rand()), schedule.retry_max_minutes)
    return timedelta(minutes=minutes)


def _delivery_hook() -> Callable[[Session, str], Any] | None:
    try:
        from mailflow.mail import suppression
    except ImportError:  # the suppression module arrives with the inbound work
        return None
    hook: Callable[[Session, str], Any] | None = getattr(suppression, "record_delivery", None)
    return hook


def apply_outcome(session: Session, settings: Settings, row: OutboxMessage, outcome: Outcome,
                  moment: datetime) -> str:
    """Store one send result on its row as a transition; returns the state the row ended in."""
    if outcome.status != OutboxStatus.SUPPRESSED:
        row.attempts += 1
    status, detail = outcome.status, outcome.detail
    if status == OutboxStatus.RETRY:
        give_up_at = row.created_at + timedelta(hours=settings.schedule.retry_give_up_hours)
        if moment >= give_up_at:
            status, detail = OutboxStatus.FAILED, f"gave up after {row.attempts} attempts: {detail}"
        else:
            row.next_attempt_at = moment + retry_delay(settings.schedule, row.attempts)
            row.claimed_by = None
            row.lease_expires_at = None
    if status == OutboxStatus.SENT:
        row.sent_at = moment
        hook = _delivery_hook()
        if hook is not None:
            hook(session, row.to_address)
    transition(session, row, status, smtp_code=outcome.code, detail=detail[:2000])
    return status


def reclaim_expired(ctx: AppContext) -> int:
    """Rows left in ``sending`` by a dead worker go back to the queue once their lease has expired."""
    moment = now()
    with ctx.db.session() as session:
        query = (select(OutboxMessage)
                 .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_expires_at < moment)
                 .limit(1000))
        if ctx.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            transition(session, row, OutboxStatus.RETRY,
                       detail=f"lease of {row.claimed_by} expired; queued again")
            row.claimed_by = None
            row.lease_expires_at = None
            row.next_attempt_at = moment
    if rows:
        log.warning("reclaimed %d mails whose sending lease expired", len(rows))
    return len(rows)


def claim_batch(ctx: AppContext, limit: int, due_before: datetime) -> list[Claimed]:
    """Mark up to ``limit`` due rows as ours (``sending`` under a lease) and return what sending needs.
    The guarded UPDATE makes a claim safe between workers on any backend; on PostgreSQL SKIP LOCKED also
    keeps concurrent workers from waiting on each other's rows."""
    moment = now()
    with ctx.db.session() as session:
        query = (select(OutboxMessage.id, OutboxMessage.status)
                 .where(OutboxMessage.status.in_(OutboxStatus.DUE),
                        OutboxMessage.next_attempt_at <= due_before)
                 .order_by(OutboxMessage.next_attempt_at)
                 .limit(limit))
        if ctx.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        previous = dict(session.execute(query).tuples().all())
        if not previous:
            return []
        claim = (update(OutboxMessage)
                 .where(OutboxMessage.id.in_(previous), OutboxMessage.status.in_(OutboxStatus.DUE))
                 .values(status=OutboxStatus.SENDING, claimed_by=ctx.worker_id,
                         lease_expires_at=moment + timedelta(seconds=ctx.settings.schedule.lease_seconds))
                 .returning(OutboxMessage.id, OutboxMessage.to_key, OutboxMessage.template,
                            OutboxMessage.to_address, OutboxMessage.to_name, OutboxMessage.message_id,
                            OutboxMessage.context)
                 .execution_options(synchronize_session=False))
        claimed = [
            Claimed(id=r.id, from_status=previous[r.id], to_key=r.to_key,
                    envelope=Envelope(r.template, r.to_address, r.to_name, r.message_id, r.context or {}))
            for r in session.execute(claim)
        ]
        if claimed:
            session.execute(insert(OutboxEvent), [
                {"outbox_id": c.id, "at": moment, "from_status": c.from_status,
                 "to_status": OutboxStatus.SENDING}
                for c in claimed
            ])
    claimed.sort(key=lambda c: c.id)
    return claimed


def release(ctx: AppContext, items: Sequence[Claimed], why: str) -> None:
    """Hand claimed but unsent rows back to the queue in the state they were claimed from."""
    if not items:
        return
    with ctx.db.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_([c.id for c in items]),
                                                           OutboxMessage.status == OutboxStatus.SENDING,
                                                           OutboxMessage.claimed_by == ctx.worker_id))
        before = {c.id: c.from_status for c in items}
        for row in rows:
            transition(session, row, before[row.id], detail=why)
            row.claimed_by = None
            row.lease_expires_at = None


def record(ctx: AppContext, results: Sequence[tuple[Claimed, Outcome]], report: TickReport) -> None:
    if not results:
        return
    moment = now()
    with ctx.db.session() as session:
        rows = {row.id: row for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([c.id for c, _ in results])))}
        for claimed, outcome in results:
            row = rows.get(claimed.id)
            if row is None:  # deleted meanwhile (retention): nothing left to record on
                continue
            if row.status != OutboxStatus.SENDING or row.claimed_by != ctx.worker_id:
                log.warning("outbox %d was reclaimed while this worker sent it; recording the result anyway",
                            row.id)
            report.count(apply_outcome(session, ctx.settings, row, outcome, moment))


def suppressed_among(ctx: AppContext, keys: set[str]) -> set[str]:
    with ctx.db.session() as session:
        found = session.scalars(select(Suppression.address_key).where(Suppression.address_key.in_(keys),
                                                                      Suppression.lifted_at.is_(None)))
        return set(found)


def send_one(settings: Settings, link: SmtpLink, item: Claimed) -> Outcome:
    try:
        raw = render_bytes(settings, item.envelope)
    except RenderError as exc:  # a mail that can never be built: permanent, and says why
        return Outcome(OutboxStatus.FAILED, None, str(exc))
    return link.send(make_return_path(settings, item.id), item.envelope.to_address, raw)


def send_batch(ctx: AppContext, batch: list[Claimed], link: SmtpLink, stop: threading.Event,
               report: TickReport) -> None:
    deadline = time.monotonic() + ctx.settings.schedule.lease_seconds * LEASE_SAFETY
    suppressed = suppressed_among(ctx, {c.to_key for c in batch})
    results: list[tuple[Claimed, Outcome]] = []
    try:
        for index, item in enumerate(batch):
            if stop.is_set() or time.monotonic() > deadline:
                why = "released: dispatch stopping" if stop.is_set() else "released: lease nearly used up"
                release(ctx, batch[index:], why)
                report.released += len(batch) - index
                break
            if item.to_key in suppressed:
                outcome = Outcome(OutboxStatus.SUPPRESSED, None, "address suppressed at send time")
            else:
                outcome = send_one(ctx.settings, link, item)
            results.append((item, outcome))
            if len(results) >= RECORD_EVERY:
                pending, results = results, []
                record(ctx, pending, report)
    finally:
        record(ctx, results, report)


def can_send(settings: Settings) -> bool:
    # Capture mode with port 0 means no capture server runs in this process (e.g. a CLI call).
    return settings.smtp.port != 0


def run_dispatch(ctx: AppContext, stop: threading.Event | None = None) -> TickReport:
    """One scheduler tick: drain what is due now, batch by batch, over one SMTP connection."""
    stop = STOP if stop is None else stop
    report = TickReport()
    if stop.is_set() or not can_send(ctx.settings):
        return report
    report.reclaimed = reclaim_expired(ctx)
    started = now()
    link = SmtpLink(ctx.settings)
    try:
        while not stop.is_set():
            # Only rows due at the tick's start: a row rescheduled during this tick waits for a later one.
            batch = claim_batch(ctx, ctx.settings.schedule.dispatch_batch, started)
            if not batch:
                break
            report.claimed += len(batch)
            send_batch(ctx, batch, link, stop, report)
    finally:
        link.close()
    if report.claimed or report.reclaimed:
        log.info("dispatch tick: claimed %d, results %s, released %d, reclaimed %d", report.claimed,
                 report.results, report.released, report.reclaimed)
    return report
