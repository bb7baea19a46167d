"""The jobs of `mailflow run` and their triggers, nothing else.

Dispatch runs on every worker (its claims are safe to share) in a loop of its own (DispatchLoop): a tick
as soon as mail is committed (mailflow.mail.wake), else every schedule.dispatch_seconds. The other jobs
run on APScheduler, per process, and are singletons: each run first takes its lease (mailflow.leases)
and renews it while it runs, so exactly one worker does it at a time and another takes over when that
worker dies. The daily digest is additionally sent once per day by claiming the day's run key
(mailflow.support.digest).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import OperationalError

from mailflow import leases
from mailflow.accounts import reminders
from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.mail import dispatch, wake
from mailflow.notify import webhooks
from mailflow.ops import housekeeping
from mailflow.support import digest, unverified

log = logging.getLogger(__name__)

Job = Callable[[AppContext], object]


def lease_name(job: str) -> str:
    return f"job:{job}"


def guarded(name: str, job: Job, ctx: AppContext) -> Callable[[], None]:
    """``job`` as a scheduler callable: a failing tick is logged and the next tick tries again."""

    def run() -> None:
        try:
            job(ctx)
        except OperationalError as exc:
            # The database is away (restart, failover): one line per tick, not a traceback storm.
            log.warning("job %s skipped: database unavailable (%s)", name, type(exc.orig).__name__)
        except OSError as exc:
            # A peer that does not answer (the IMAP server down, a refused connection): also one line
            # per tick; the next tick tries again.
            log.warning("job %s skipped: network error (%s: %s)", name, type(exc).__name__, exc)
        except Exception:
            log.exception("job %s failed", name)

    return run


def singleton(name: str, job: Job, ctx: AppContext, ttl: float) -> Callable[[], None]:
    """``job`` run only by the worker holding its lease, renewed while the job runs."""

    def when_leased(ctx: AppContext) -> None:
        with leases.hold(ctx.db, lease_name(name), ctx.worker_id, ttl) as held:
            if held is not None:
                job(ctx)

    return guarded(name, when_leased, ctx)


def build_scheduler(ctx: AppContext) -> BackgroundScheduler:
    # A run longer than its interval makes APScheduler skip the next one, at WARNING; that is the design
    # (max_instances=1), not news. Job failures are logged by `guarded`.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    s = ctx.settings.schedule
    scheduler = BackgroundScheduler(timezone=s.timezone, job_defaults={"coalesce": True, "max_instances": 1})
    # A singleton's lease outlives a few of its intervals, so it stays with one worker between runs;
    # a dead worker's job moves to another after at most that long. The IMAP mailbox is not a job here:
    # daemon.py runs mailflow.inbound.imap.MailboxWatcher (IDLE, or polling where there is none).
    scheduler.add_job(singleton("reminders", reminders.run, ctx, s.reminder_check_seconds * 3), "interval",
                      seconds=s.reminder_check_seconds, id="reminders")
    # A mail stored but not processed (the process died in between) is picked up here.
    scheduler.add_job(singleton("inbound-pending", route.process_pending, ctx, s.imap_poll_seconds * 3),
                      "interval", seconds=s.imap_poll_seconds, id="inbound-pending")
    # Customer service sees unverified applicants and permanently failed mails the same day, not only in
    # the morning digest.
    scheduler.add_job(singleton("support-sweep", unverified.sweep, ctx, s.support_sweep_seconds * 1.5),
                      "interval", seconds=s.support_sweep_seconds, id="support-sweep")
    scheduler.add_job(singleton("housekeeping", housekeeping.run, ctx, s.housekeeping_seconds * 1.5),
                      "interval", seconds=s.housekeeping_seconds, id="housekeeping")
    # Events go out in order, so one worker delivers them (and numbers them first: notify.events).
    scheduler.add_job(singleton("webhooks", webhooks.deliver_due, ctx, max(s.webhook_seconds * 3, 30.0)),
                      "interval", seconds=s.webhook_seconds, id="webhooks")
    # The digest is sent once per day whoever runs it: digest.run_scheduled claims the day's run key.
    scheduler.add_job(guarded("digest", digest.run_scheduled, ctx),
                      CronTrigger.from_crontab(s.digest_cron, timezone=s.timezone), id="digest")
    # A day whose 08:00 run failed, or that no worker was up for, is queued on a later tick.
    scheduler.add_job(guarded("digest-catch-up", digest.catch_up, ctx), "interval",
                      seconds=s.support_sweep_seconds, id="digest-catch-up")
    return scheduler


class DispatchLoop:
    """Dispatch's trigger: a tick as soon as WAKE is set (mail committed in this process or, on
    PostgreSQL, in any), else every schedule.dispatch_seconds — the safety net. One thread, so ticks of
    this process never overlap; mail committed during a tick sets WAKE again and the next tick follows at
    once (a tick only claims what was due when it began)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.wake = wake.WAKE
        self.tick = guarded("dispatch", dispatch.run_dispatch, ctx)
        self.halt = threading.Event()
        self.listener = wake.Listener(ctx.settings.database.url) if ctx.db.is_postgres else None
        self.thread = threading.Thread(target=self._run, name="dispatch", daemon=True)

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Wait for the running tick (dispatch.request_stop makes it hand back what it has not sent)."""
        self.halt.set()
        self.wake.set()
        if self.listener is not None:
            self.listener.stop(timeout)
        self.thread.join(timeout)

    def _run(self) -> None:
        while not self.halt.is_set():
            self.wake.clear()  # before the tick: what commits from now on wakes the next one
            self.tick()
            self.wake.wait(self.ctx.settings.schedule.dispatch_seconds)
