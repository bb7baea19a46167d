"""Webhook subscribers and the delivery of events to them, signed the Standard Webhooks way.

Each event is one POST of its JSON body ``{"type","id","timestamp","data"}`` with the headers
``webhook-id`` (the event's id: the same on every retry, so a receiver drops a repeat),
``webhook-timestamp`` (this attempt's time, seconds) and ``webhook-signature`` (``v1,`` and the base64 of
HMAC-SHA256 over ``id.timestamp.body`` under the subscriber's secret, ``whsec_`` + base64). A receiver
checks it with any Standard Webhooks library and refuses an old timestamp, so a captured request cannot
be replayed later and a body signed with another secret does not verify.

Delivery (``deliver_due``, a singleton scheduler job): events are first numbered (events.sequence_pending),
then each enabled, due subscriber gets the events after its cursor, of the types it chose, oldest first,
a chunk at a time: each account's events in order in a lane of their own, a few lanes side by side (a
slow receiver far away still gets several events at once). Any answer but 2xx (or no answer) stops that
account's lane: nothing of that account behind the failed event is sent, so each account's events
arrive in the order they happened, and the failed one is tried again after a backoff
(webhooks.retry_first_seconds, doubling to retry_max_seconds). The cursor moves only over events that
got a 2xx with none missing before them, so every event arrives at least once; events of other accounts
delivered past a failure come again on the retry (a receiver drops repeats by ``webhook-id``). A
subscriber whose cursor has not moved for webhooks.give_up_hours since its first failure is disabled
(logged, `mailflow webhook list`, /metrics); its events wait, and `webhook enable` resumes from where it
stopped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import WebhookSubscriber
from mailflow.notify.events import EVENT_TYPES, PublicEvent, events_after, last_seq, sequence_pending
from mailflow.timeutil import iso_taipei, now

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
BATCH = 500  # events read per subscriber and round
CHUNK = 100  # events sent between two stores of a subscriber's cursor
LANES = 4  # accounts whose events go to one subscriber side by side (each account's stay in order)
PARALLEL_SUBSCRIBERS = 4  # a slow receiver must not hold up the others
USER_AGENT = "mailflow-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_request(secret: str, event: PublicEvent,
                   timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery of ``event`` (signed now, or at ``timestamp``)."""
    body = json.dumps(event.body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    moment = int(time.time()) if timestamp is None else timestamp
    return body, {"content-type": "application/json", "webhook-id": event.id,
                  "webhook-timestamp": str(moment), "webhook-signature": sign(secret, event.id, moment, body),
                  "user-agent": USER_AGENT}


# --- the operator's side ------------------------------------------------------------------------


class SubscriberError(ValueError):
    """A subscriber that cannot be added as asked; the message says why (English, for the CLI)."""


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise SubscriberError(f"not an http:// or https:// URL: {url!r}")
    return url


def check_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown or not types:
        raise SubscriberError(f"unknown event type(s) {', '.join(unknown) or '(none given)'}; "
                              f"known: {', '.join(EVENT_TYPES)}")
    return [t for t in EVENT_TYPES if t in types]


def add_subscriber(session: Session, url: str, types: list[str]) -> tuple[WebhookSubscriber, str]:
    """A subscriber of ``types`` at ``url``, receiving events from now on; returns it and its secret."""
    secret = new_secret()
    row = WebhookSubscriber(url=check_url(url), secret=secret, event_types=check_types(types),
                            cursor=last_seq(session))
    session.add(row)
    session.flush()
    audit.record(session, "operator", "webhook.added", "webhook", row.id, url=url,
                 event_types=row.event_types)
    return row, secret


def set_enabled(session: Session, subscriber_id: int, enabled: bool) -> WebhookSubscriber | None:
    row = session.get(WebhookSubscriber, subscriber_id)
    if row is None:
        return None
    if enabled:
        row.disabled_at = row.disabled_reason = None
        row.failing_since = row.next_attempt_at = None
        row.failures = 0
    elif row.disabled_at is None:
        row.disabled_at, row.disabled_reason = now(), "disabled by an operator"
    audit.record(session, "operator", "webhook.enabled" if enabled else "webhook.disabled", "webhook", row.id)
    return row


def remove_subscriber(session: Session, subscriber_id: int) -> bool:
    row = session.get(WebhookSubscriber, subscriber_id)
    if row is None:
        return False
    audit.record(session, "operator", "webhook.removed", "webhook", row.id, url=row.url)
    session.delete(row)
    return True


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sequenced: int = 0
    delivered: int = 0
    failed: int = 0
    disabled: int = 0


@dataclass(frozen=True)
class Due:
    id: int
    url: str
    secret: str
    types: tuple[str, ...]
    cursor: int


def retry_delay(settings: Settings, failures: int) -> timedelta:
    hooks = settings.webhooks
    seconds = hooks.retry_first_seconds * 2 ** max(failures - 1, 0)
    return timedelta(seconds=min(seconds, hooks.retry_max_seconds))


def _due(session: Session, moment: datetime) -> list[Due]:
    rows = session.execute(
        select(WebhookSubscriber.id, WebhookSubscriber.url, WebhookSubscriber.secret,
               WebhookSubscriber.event_types, WebhookSubscriber.cursor)
        .where(WebhookSubscriber.disabled_at.is_(None),
               or_(WebhookSubscriber.next_attempt_at.is_(None), WebhookSubscriber.next_attempt_at <= moment))
        .order_by(WebhookSubscriber.id))
    return [Due(r.id, r.url, r.secret, tuple(r.event_types or ()), int(r.cursor)) for r in rows]


def deliver_due(ctx: AppContext, client: httpx.Client | None = None) -> DeliveryReport:
    """One tick: number new events, then bring every due subscriber up to date (or to its first failure)."""
    report = DeliveryReport(sequenced=sequence_pending(ctx.db))
    with ctx.db.session() as session:
        due = _due(session, now())
    if not due:
        return report
    own = client is None
    http = client or httpx.Client(timeout=ctx.settings.webhooks.timeout_seconds, follow_redirects=False)
    try:
        workers = min(PARALLEL_SUBSCRIBERS, len(due))
        if workers == 1:
            results = [_catch_up(ctx, http, due[0])]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks") as pool:
                results = list(pool.map(lambda s: _catch_up(ctx, http, s), due))
    finally:
        if own:
            http.close()
    for delivered, failed, disabled in results:
        report.delivered += delivered
        report.failed += failed
        report.disabled += disabled
    if report.delivered:  # a failure has its own warning line (_record_failure)
        log.info("webhooks: delivered %d events, %d failures, %d subscribers disabled", report.delivered,
                 report.failed, report.disabled)
    return report


def _post(http: httpx.Client, subscriber: Due, event: PublicEvent) -> str | None:
    """Deliver one event; None on a 2xx, else what went wrong (for the operator)."""
    body, headers = signed_request(subscriber.secret, event)
    try:
        answer = http.post(subscriber.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code} for {event.type} {event.id}"


def _catch_up(ctx: AppContext, http: httpx.Client, subscriber: Due) -> tuple[int, int, int]:
    """Send ``subscriber`` its events until none is left or one fails; returns (delivered, failed,
    disabled). Events go a CHUNK at a time, each account's in order in its own lane (LANES lanes side by
    side); the cursor then moves over the events delivered without a gap, so a crash or a failure
    repeats at most a chunk's later events (at least once, never lost)."""
    cursor, delivered = subscriber.cursor, 0
    while True:
        with ctx.db.session() as session:
            # The top first: every event numbered up to it is visible to the read that follows (the
            # sequencer commits numbers and last_seq together), so skipping to it loses nothing.
            top = last_seq(session)
            batch = events_after(session, cursor, BATCH, subscriber.types)
        if not batch:
            # Nothing of its types is left: move past the events it does not take, in one step.
            if top > cursor:
                _record_success(ctx, subscriber.id, top, 0)
            return delivered, 0, 0
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start:start + CHUNK]
            sent, failure = _send_chunk(http, subscriber, chunk)
            reached = cursor
            for event in chunk:
                if event.seq not in sent:
                    break
                reached = event.seq
            delivered += len(sent)
            if reached > cursor:
                _record_success(ctx, subscriber.id, reached, len(sent))
                cursor = reached
            if failure is not None:
                return delivered, 1, _record_failure(ctx, subscriber.id, failure)


def _lanes(events: list[PublicEvent]) -> list[list[PublicEvent]]:
    """``events`` split by account, each lane in order; events of no account share one lane."""
    lanes: dict[int | None, list[PublicEvent]] = {}
    for event in events:
        lanes.setdefault(event.account_id, []).append(event)
    return list(lanes.values())


def _send_lane(http: httpx.Client, subscriber: Due, lane: list[PublicEvent]) -> tuple[list[int], str | None]:
    """One account's events in order, stopping at the first that fails."""
    sent: list[int] = []
    for event in lane:
        failure = _post(http, subscriber, event)
        if failure is not None:
            return sent, failure
        sent.append(event.seq)
    return sent, None


def _send_chunk(http: httpx.Client, subscriber: Due,
                chunk: list[PublicEvent]) -> tuple[set[int], str | None]:
    """The chunk's lanes side by side; the seqs delivered and the first failure (None when none)."""
    lanes = _lanes(chunk)
    if len(lanes) == 1:
        results = [_send_lane(http, subscriber, lanes[0])]
    else:
        with ThreadPoolExecutor(min(LANES, len(lanes)), thread_name_prefix="webhook-lane") as pool:
            results = list(pool.map(lambda lane: _send_lane(http, subscriber, lane), lanes))
    sent = {seq for lane_sent, _ in results for seq in lane_sent}
    failure = next((why for _, why in results if why is not None), None)
    return sent, failure


def _record_success(ctx: AppContext, subscriber_id: int, cursor: int, count: int) -> None:
    """The cursor moved to ``cursor``: the failing spell, if any, is over."""
    with ctx.db.session() as session:
        values: dict[str, Any] = {"cursor": cursor, "failures": 0, "failing_since": None,
                                  "next_attempt_at": None}
        if count:
            values.update(delivered=WebhookSubscriber.delivered + count, last_success_at=now())
        session.execute(update(WebhookSubscriber)
                        .where(WebhookSubscriber.id == subscriber_id, WebhookSubscriber.cursor <= cursor)
                        .values(**values))


def _record_failure(ctx: AppContext, subscriber_id: int, failure: str) -> int:
    """Note the failure and when to try again; disable a subscriber failing for give_up_hours. Returns 1
    when it was disabled now."""
    moment = now()
    with ctx.db.session() as session:
        row = session.get(WebhookSubscriber, subscriber_id)
        if row is None:  # removed meanwhile
            return 0
        row.failures += 1
        row.failing_since = row.failing_since or moment
        row.last_failure_at, row.last_failure = moment, failure
        row.next_attempt_at = moment + retry_delay(ctx.settings, row.failures)
        if moment - row.failing_since >= timedelta(hours=ctx.settings.webhooks.give_up_hours):
            row.disabled_at = moment
            row.disabled_reason = (f"failing since {row.failing_since.isoformat(timespec='seconds')}, "
                                   f"{row.failures} attempts; last: {failure}")[:300]
            log.warning("webhook %d (%s) disabled: %s", row.id, row.url, row.disabled_reason)
            return 1
    log.warning("webhook %d: delivery failed (%s); next try in %s", subscriber_id, failure,
                retry_delay(ctx.settings, row.failures))
    return 0


def describe(row: WebhookSubscriber, top: int) -> dict[str, Any]:
    """A subscriber as `mailflow webhook list` shows it (never its secret): ``behind`` counts the events
    after its cursor up to ``top``, the newest sequence number."""
    return {"id": row.id, "url": row.url, "events": row.event_types, "enabled": row.disabled_at is None,
            "delivered": row.delivered, "behind": max(0, top - row.cursor),
            "last_success_at": iso_taipei(row.last_success_at),
            "last_failure_at": iso_taipei(row.last_failure_at),
            "last_failure": row.last_failure, "failures_in_a_row": row.failures,
            "next_attempt_at": iso_taipei(row.next_attempt_at), "disabled_at": iso_taipei(row.disabled_at),
            "disabled_reason": row.disabled_reason}


def listing(session: Session) -> list[dict[str, Any]]:
    """Every subscriber in id order, as describe() says."""
    top = last_seq(session)
    rows = session.scalars(select(WebhookSubscriber).order_by(WebhookSubscriber.id))
    return [describe(row, top) for row in rows]
