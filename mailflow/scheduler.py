"""The jobs of `mailflow run` and their triggers, nothing else.

APScheduler stays per process. Dispatch runs on every worker (claims are safe to share); the other jobs
are singletons: each run first takes its lease (mailflow.leases), so exactly one worker does it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from mailflow import leases
from mailflow.context import AppContext

log = logging.getLogger(__name__)


def _guarded(name: str, job: Callable[[AppContext], object], ctx: AppContext) -> Callable[[], None]:
    def run() -> None:
        try:
            job(ctx)
        except Exception:  # a failing tick must not kill the scheduler; the next tick tries again
            log.exception("job %s failed", name)

    return run


def _singleton(name: str, job: Callable[[AppContext], object], ctx: AppContext, ttl: float) -> Callable[[], None]:
    def when_leased(ctx: AppContext) -> None:
        if leases.acquire(ctx.db, f"job:{name}", ctx.worker_id, ttl):
            job(ctx)

    return _guarded(name, when_leased, ctx)


def build_scheduler(ctx: AppContext) -> BackgroundScheduler:
    from mailflow.accounts import reminders
    from mailflow.inbound import imap
    from mailflow.mail import dispatch
    from mailflow.ops import housekeeping
    from mailflow.support import digest

    s = ctx.settings.schedule
    scheduler = BackgroundScheduler(timezone=s.timezone, job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded("dispatch", dispatch.run_dispatch, ctx), "interval", seconds=s.dispatch_seconds,
                      id="dispatch")
    if ctx.settings.inbound.imap_host:
        scheduler.add_job(_singleton("imap", imap.poll, ctx, s.imap_poll_seconds * 3), "interval",
                          seconds=s.imap_poll_seconds, id="imap")
    scheduler.add_job(_singleton("reminders", reminders.run, ctx, s.reminder_check_seconds * 3), "interval",
                      seconds=s.reminder_check_seconds, id="reminders")
    scheduler.add_job(_singleton("housekeeping", housekeeping.run, ctx, s.housekeeping_seconds), "interval",
                      seconds=s.housekeeping_seconds, id="housekeeping")
    # The digest is sent once per day whoever runs it: digest.run_scheduled claims the day's run key.
    scheduler.add_job(_guarded("digest", digest.run_scheduled, ctx),
                      CronTrigger.from_crontab(s.digest_cron, timezone=s.timezone), id="digest")
    return scheduler
