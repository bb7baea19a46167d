"""The daily customer-service digest (`support-digest`): yesterday's counts and today's open items, mailed
to mail.support_address at 08:00 Taipei by the scheduler, or printed / sent by `mailflow support digest`.

Several `mailflow run` workers all fire the 08:00 cron; claiming the day's run key in the transaction
that queues the mail lets exactly one of them queue the day's copy, and catch_up queues a day that was
missed (a failed run, or no worker up at 08:00).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session

from mailflow import leases
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail.contexts import SupportDigest
from mailflow.mail.queue import queue_support_digest
from mailflow.models import OutboxMessage
from mailflow.support import queries, unverified
from mailflow.support.reasons_zh import kind_title
from mailflow.timeutil import now, roc_datetime, taipei

log = logging.getLogger(__name__)

RUN_KEY_NAME = "support-digest"
ITEM_LIMIT = 100  # the mail lists the newest; the dashboard has the rest

COUNT_LABELS = {
    "sent": "寄出郵件",
    "failed": "寄送失敗",
    "bounced_hard": "永久退信",
    "bounced_soft": "暫時退信",
    "complaints": "垃圾郵件檢舉",
    "replies": "申請人回信",
    "new_applications": "新申請案",
}


def today() -> date:
    return taipei(now()).date()


def build_digest(session: Session, settings: Settings, day: date) -> SupportDigest:
    """The `support-digest` context for the morning of ``day``: counts of the day before and the open
    items as they stand now. JSON-safe: it is stored in the outbox row."""
    counts_day = day - timedelta(days=1)
    counts = queries.day_counts(session, counts_day).as_dict()
    open_filter = queries.ItemFilter(state="open")
    open_total = queries.count_items(session, open_filter)
    page = queries.page_items(session, open_filter, limit=ITEM_LIMIT)
    by_kind = queries.open_counts_by_kind(session)
    return {
        "day": day.isoformat(),
        "counts_day": counts_day.isoformat(),
        "counts": {**counts, "open_items": open_total},
        "count_labels": COUNT_LABELS,
        "open_by_kind": [{"kind": k, "title": kind_title(k), "count": n, "more": n >= queries.COUNT_CAP}
                         for k, n in by_kind.items()],
        # Staff read 民國 dates, like /support; the CSV export keeps its sortable Gregorian ones.
        "items": [{**view.as_dict(), "created_at": roc_datetime(view.item.created_at)}
                  for view in queries.item_views(session, page.items)],
        "items_shown": len(page.items),
        "items_total": open_total,
        "dashboard_url": settings.http.base_url.rstrip("/") + "/support",
    }


def send_digest(session: Session, settings: Settings, day: date) -> OutboxMessage:
    """Queue the digest for ``day`` to mail.support_address in the caller's transaction."""
    return queue_support_digest(session, settings, build_digest(session, settings, day))


def run_scheduled(ctx: AppContext, day: date | None = None) -> int | None:
    """The 08:00 cron entry on every worker: the first to claim the day queues the digest; the others
    return None. The sweep runs first so the digest lists today's unverified and failed mails. The claim
    and the queued mail commit together: if queueing fails, the day stays unclaimed and catch_up sends
    it on a later tick."""
    day = day or today()
    unverified.sweep(ctx)
    with ctx.db.session() as session:
        if not leases.claim_run_key_in(session, RUN_KEY_NAME, day.isoformat()):
            log.info("support digest for %s already queued by another worker", day)
            return None
        message = send_digest(session, ctx.settings, day)
        message_id = message.id
    log.info("support digest for %s queued as outbox %d", day, message_id)
    return message_id


def due_today(cron: str, timezone: str, moment: datetime) -> datetime | None:
    """When ``cron`` first fires on ``moment``'s day (in ``timezone``), None if it does not that day."""
    local = moment.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    trigger = CronTrigger.from_crontab(cron, timezone=timezone)
    first: datetime | None = trigger.get_next_fire_time(None, midnight)
    return first if first is not None and first.date() == local.date() else None


def catch_up(ctx: AppContext, moment: datetime | None = None) -> int | None:
    """Queue today's digest when its time has passed and no worker has: the 08:00 run failed (nothing
    was claimed then) or no worker was running at 08:00. Run often; it costs one indexed read."""
    moment = moment or now()
    schedule = ctx.settings.schedule
    due = due_today(schedule.digest_cron, schedule.timezone, moment)
    day = moment.astimezone(ZoneInfo(schedule.timezone)).date()
    if due is None or moment < due or leases.run_key_done(ctx.db, RUN_KEY_NAME, day.isoformat()):
        return None
    log.warning("support digest for %s was not queued at %s: queueing it now", day, due.strftime("%H:%M"))
    return run_scheduled(ctx, day)
