"""Dispatch: the scheduler's tick that takes due outbox rows to a final state.

A tick reclaims rows whose lease expired (their worker died), then repeatedly claims a batch of due rows
(queued|retry, next_attempt_at <= the tick's start) as ``sending`` under a lease and works through it in
groups of RECORD_EVERY: renders the group, sends it over one reused SMTP session (mailflow.mail.relay:
one transaction per mail, pipelined where the relay offers it; what each reply means is written there),
and records the group's results as persisted transitions (one OutboxEvent each, with time and SMTP
reply): sent, retry (exponential backoff with jitter, failed after schedule.retry_give_up_hours),
failed, or suppressed. When no session can be had (connect, EHLO, STARTTLS, AUTH refused, or the relay
broke too many sessions) the mail and the rest of the batch go to retry with the same reply, and the
tick stops there (logged once, naming the relay).

Crash safety: claims and results are separate short transactions, never held open across SMTP. A crash
leaves at most the claimed batch in ``sending`` (its unrecorded sent mails included); its lease expires
and it is sent again. Stopping (``request_stop``) ends the tick between two mails, records what was sent
and hands the unsent claimed rows back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, insert, select, text, update

from mailflow.config import ScheduleSettings, Settings
from mailflow.context import AppContext
from mailflow.mail import states
from mailflow.mail.outbox import transition
from mailflow.mail.relay import Outcome, Outgoing, SmtpLink
from mailflow.mail.render import Envelope, RenderError, render_bytes
from mailflow.mail.returnpath import make_return_path
from mailflow.mail.suppression import record_deliveries
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.models.mail import DUE_SQL
from mailflow.notify.notifications import record_outcomes
from mailflow.timeutil import now

log = logging.getLogger(__name__)

STOP = threading.Event()
RECORD_EVERY = 200  # mails rendered, sent and recorded as one group (a crash re-sends at most the batch)
LEASE_SAFETY = 0.8  # stop sending a batch once this share of its lease is used, so no one reclaims it live
# Results are recorded with Core statements on the tables (executemany), not ORM objects per mail.
OUTBOX = cast(Table, OutboxMessage.__table__)
OUTBOX_EVENTS = cast(Table, OutboxEvent.__table__)


def request_stop() -> None:
    """Ask running and future ticks to stop between two mails (the daemon calls this on shutdown)."""
    STOP.set()


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
    link_down: Outcome | None = None  # set when the session could not be opened; ends the tick

    def count(self, status: str) -> None:
        self.results[status] = self.results.get(status, 0) + 1


def retry_delay(schedule: ScheduleSettings, attempts: int,
                rand: Callable[[], float] = random.random) -> timedelta:
    """Doubling from retry_first_minutes, capped at retry_max_minutes, with ±20% jitter so the mails of
    one outage do not all come back in the same second."""
    minutes = schedule.retry_first_minutes * 2 ** max(attempts - 1, 0)
    minutes = min(minutes * (0.8 + 0.4 * rand()), schedule.retry_max_minutes)
    return timedelta(minutes=minutes)


@dataclass(frozen=True)
class RowNow:
    """What recording needs of a claimed row as it is in the database now."""

    id: int
    status: str
    claimed_by: str | None
    attempts: int
    created_at: datetime


def settle(settings: Settings, row: RowNow, claimed: Claimed, outcome: Outcome,
           moment: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """One send result as the row's new column values and its transition event (both keyed for the
    grouped statements of ``record``). Every result ends the lease."""
    attempts = row.attempts if outcome.status == OutboxStatus.SUPPRESSED else row.attempts + 1
    status, detail = outcome.status, outcome.detail
    values: dict[str, Any] = {"b_id": row.id, "b_attempts": attempts}
    if status == OutboxStatus.RETRY:
        give_up_at = row.created_at + timedelta(hours=settings.schedule.retry_give_up_hours)
        if moment >= give_up_at:
            status, detail = OutboxStatus.FAILED, f"gave up after {attempts} attempts: {detail}"
        else:
            values["b_next_attempt_at"] = moment + retry_delay(settings.schedule, attempts)
    # The move is this worker's own claim ending: from 'sending', whatever a reclaim did to the row meanwhile.
    new = states.step(OutboxStatus.SENDING, status, context=claimed.envelope.context, moment=moment)
    values.update((f"b_{column}", value) for column, value in new.items() if column not in _LEASE_COLUMNS)
    detail = detail[:2000]
    values["b_last_reply"] = detail
    event = {"outbox_id": row.id, "at": moment, "from_status": row.status, "to_status": status,
             "smtp_code": outcome.code, "detail": detail}
    return values, event


# Every recorded result ends the lease: the grouped UPDATE sets these itself.
_LEASE_COLUMNS = ("claimed_by", "lease_expires_at")


def _update_statements(changes: Sequence[dict[str, Any]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The row changes grouped by the columns they set: one executemany UPDATE per group."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    statements = []
    for keys, rows in groups.items():
        columns: dict[str, BindParameter[Any]] = {key[2:]: bindparam(key) for key in keys if key != "b_id"}
        statement = (update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))
                     .values(claimed_by=None, lease_expires_at=None, **columns))
        statements.append((statement, rows))
    return statements


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
            row.next_attempt_at = moment
    if rows:
        log.warning("reclaimed %d mails whose sending lease expired", len(rows))
    return len(rows)


def claim_batch(ctx: AppContext, limit: int, due_before: datetime) -> list[Claimed]:
    """Mark up to ``limit`` due rows as ours (``sending`` under a lease) and return what sending needs.
    The guarded UPDATE makes a claim safe between workers on any backend; on PostgreSQL SKIP LOCKED also
    keeps concurrent workers from waiting on each other's rows."""
    moment = now()
    table = OUTBOX
    with ctx.db.session() as session:
        query = (select(table.c.id, table.c.status)
                 .where(text(DUE_SQL), table.c.next_attempt_at <= due_before)
                 .order_by(table.c.next_attempt_at)
                 .limit(limit))
        if ctx.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        previous = dict(session.execute(query).tuples().all())
        if not previous:
            return []
        claim = (update(table)
                 .where(table.c.id.in_(previous), table.c.status.in_(states.DUE))
                 .values(status=OutboxStatus.SENDING, claimed_by=ctx.worker_id,
                         lease_expires_at=moment + timedelta(seconds=ctx.settings.schedule.lease_seconds))
                 .returning(table.c.id, table.c.to_key, table.c.template, table.c.to_address,
                            table.c.to_name, table.c.message_id, table.c.context))
        claimed = [
            Claimed(id=r.id, from_status=previous[r.id], to_key=r.to_key,
                    envelope=Envelope(r.template, r.to_address, r.to_name, r.message_id, r.context or {}))
            for r in session.execute(claim)
        ]
        if claimed:
            session.execute(insert(OUTBOX_EVENTS), [
                {"outbox_id": c.id, "at": moment, "from_status": c.from_status,
                 "to_status": OutboxStatus.SENDING, "smtp_code": None, "detail": None}
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


def record(ctx: AppContext, results: Sequence[tuple[Claimed, Outcome]], report: TickReport) -> None:
    """Store a group of send results in one transaction: the rows read once, then one executemany per
    statement shape (row updates, transition events, delivery health) rather than ORM objects per mail."""
    if not results:
        return
    moment = now()
    table = OUTBOX
    with ctx.db.session() as session:
        found = session.execute(select(table.c.id, table.c.status, table.c.claimed_by, table.c.attempts,
                                       table.c.created_at)
                                .where(table.c.id.in_([c.id for c, _ in results])))
        rows = {r.id: RowNow(r.id, r.status, r.claimed_by, r.attempts, r.created_at) for r in found}
        changes, events, delivered, settled = [], [], [], []
        for claimed, outcome in results:
            row = rows.get(claimed.id)
            if row is None:  # deleted meanwhile (retention): nothing left to record on
                continue
            if row.status != OutboxStatus.SENDING or row.claimed_by != ctx.worker_id:
                log.warning("outbox %d was reclaimed while this worker sent it; recording the result anyway",
                            row.id)
            values, event = settle(ctx.settings, row, claimed, outcome, moment)
            changes.append(values)
            events.append(event)
            if event["to_status"] == OutboxStatus.SENT:
                delivered.append(claimed.envelope.to_address)
            settled.append((claimed.envelope.template, row.id, event["to_status"]))
            report.count(event["to_status"])
        for statement, params in _update_statements(changes):
            session.execute(statement, params)
        if events:
            session.execute(insert(OUTBOX_EVENTS), events)
        record_deliveries(session, delivered)
        record_outcomes(session, settled)  # notification.sent / .failed, in this same transaction


def suppressed_among(ctx: AppContext, keys: set[str]) -> set[str]:
    with ctx.db.session() as session:
        found = session.scalars(select(Suppression.address_key).where(Suppression.address_key.in_(keys),
                                                                      Suppression.lifted_at.is_(None)))
        return set(found)


@dataclass(frozen=True)
class Prepared:
    """One claimed mail ready for SMTP: its signed return path and wire bytes."""

    sender: str
    raw: bytes


def prepare(settings: Settings, item: Claimed, suppressed: set[str]) -> Prepared | Outcome:
    """The mail's bytes, or the outcome that stands without sending (suppressed, or unbuildable)."""
    if item.to_key in suppressed:
        return Outcome(OutboxStatus.SUPPRESSED, None, "address suppressed at send time")
    try:
        raw = render_bytes(settings, item.envelope)
    except RenderError as exc:  # a mail that can never be built: permanent, and says why
        return Outcome(OutboxStatus.FAILED, None, str(exc))
    return Prepared(make_return_path(settings, item.id), raw)


def send_one(settings: Settings, link: SmtpLink, item: Claimed) -> Outcome:
    """Prepare and send one mail."""
    prepared = prepare(settings, item, set())
    if isinstance(prepared, Outcome):
        return prepared
    return link.send(prepared.sender, item.envelope.to_address, prepared.raw)


def send_batch(ctx: AppContext, batch: list[Claimed], link: SmtpLink, stop: threading.Event,
               report: TickReport) -> None:
    """Send a claimed batch group by group (RECORD_EVERY mails): render the whole group, send it, record
    its results. Doing each kind of work in a run, rather than render-send-record per mail, keeps the
    caches warm for each (Jinja, smtplib, SQLAlchemy); measured on the 2-core VM where the relay shares a
    core with us, it cut dispatch CPU per mail by a quarter (docs/BENCHMARKS.md, Dispatch)."""
    deadline = time.monotonic() + ctx.settings.schedule.lease_seconds * LEASE_SAFETY

    def keep_going() -> bool:
        return not stop.is_set() and time.monotonic() <= deadline

    suppressed = suppressed_among(ctx, {c.to_key for c in batch})
    for start in range(0, len(batch), RECORD_EVERY):
        group = batch[start:start + RECORD_EVERY]
        results: list[tuple[Claimed, Outcome]] = []
        outgoing: list[tuple[Claimed, Outgoing]] = []
        for item in group:
            ready = prepare(ctx.settings, item, suppressed)
            if isinstance(ready, Outcome):  # stands without sending (suppressed, unbuildable)
                results.append((item, ready))
            else:
                outgoing.append((item, Outgoing(ready.sender, item.envelope.to_address, ready.raw)))
        sending = link.send_all(outgoing, keep_going)
        try:
            for item, outcome in sending:
                results.append((item, outcome))
                if outcome.link_down:
                    # Trying the others would only hammer a relay that cannot take them: they wait too.
                    report.link_down = outcome
                    break
        finally:
            sending.close()
            done = {item.id for item, _ in results}
            unsent = [item for item, _ in outgoing if item.id not in done]
            if report.link_down is not None:
                results.extend((item, report.link_down) for item in unsent + batch[start + len(group):])
            record(ctx, results, report)
        if report.link_down is not None:
            return
        if unsent:  # stopping, or the lease is nearly used up: hand the rest back
            rest = unsent + batch[start + len(group):]
            why = "released: dispatch stopping" if stop.is_set() else "released: lease nearly used up"
            release(ctx, rest, why)
            report.released += len(rest)
            return


def can_send(ctx: AppContext) -> bool:
    # Capture mode with port 0 means no capture server runs in this process (e.g. a CLI call).
    return ctx.smtp_port() != 0


def run_dispatch(ctx: AppContext, stop: threading.Event | None = None) -> TickReport:
    """One scheduler tick: drain what is due now, batch by batch, over one SMTP connection."""
    stop = STOP if stop is None else stop
    report = TickReport()
    if stop.is_set() or not can_send(ctx):
        return report
    report.reclaimed = reclaim_expired(ctx)
    started = now()
    link = SmtpLink(ctx.settings, ctx.smtp_port())
    try:
        while not stop.is_set() and report.link_down is None:
            # Only rows due at the tick's start: a row rescheduled during this tick waits for a later one.
            batch = claim_batch(ctx, ctx.settings.schedule.dispatch_batch, started)
            if not batch:
                break
            report.claimed += len(batch)
            send_batch(ctx, batch, link, stop, report)
    finally:
        link.close()
    if report.link_down is not None:  # once per tick: the tick stops at the first such failure
        log.warning("dispatch: no SMTP session with %s (%s); the tick's mails wait for a retry",
                    link.target, report.link_down.detail)
    if report.claimed or report.reclaimed:
        log.info("dispatch tick: claimed %d, results %s, released %d, reclaimed %d", report.claimed,
                 report.results, report.released, report.reclaimed)
    return report
