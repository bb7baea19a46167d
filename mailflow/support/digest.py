"""The daily customer-service digest (`support-digest`): yesterday's counts and today's open items, mailed
to mail.support_address at 08:00 Taipei by the scheduler, or printed / sent by `mailflow support digest`.

Several `mailflow run` workers all fire the 08:00 cron; claim_run_key lets exactly one of them queue the
day's copy.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from mailflow import leases
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail.outbox import enqueue
from mailflow.models import OutboxMessage
from mailflow.support import queries, unverified
from mailflow.support.reasons_zh import kind_title
from mailflow.timeutil import now, taipei

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


def build_digest(session: Session, settings: Settings, day: date) -> dict[str, Any]:
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
        "items": [view.as_dict() for view in queries.item_views(session, page.items)],
        "items_shown": len(page.items),
        "items_total": open_total,
        "dashboard_url": settings.http.base_url.rstrip("/") + "/support",
    }


def send_digest(session: Session, settings: Settings, day: date) -> OutboxMessage:
    """Queue the digest for ``day`` to mail.support_address in the caller's transaction."""
    return enqueue(session, "support-digest", settings.mail.support_address,
                   message_id_domain=settings.mail.message_id_domain, to_name="客服",
                   context=build_digest(session, settings, day))


def run_scheduled(ctx: AppContext, day: date | None = None) -> int | None:
    """The 08:00 cron entry on every worker: the first to claim the day queues the digest; the others
    return None. The sweep runs first so the digest lists today's unverified and failed mails."""
    day = day or today()
    unverified.sweep(ctx)
    if not leases.claim_run_key(ctx.db, RUN_KEY_NAME, day.isoformat()):
        log.info("support digest for %s already queued by another worker", day)
        return None
    try:
        with ctx.db.session() as session:
            message = send_digest(session, ctx.settings, day)
            message_id = message.id
    except Exception:
        # The day is claimed but nothing was queued: say so loudly; `mailflow support digest --send`
        # queues it by hand.
        log.exception("support digest for %s was claimed but could not be queued", day)
        raise
    log.info("support digest for %s queued as outbox %d", day, message_id)
    return message_id
