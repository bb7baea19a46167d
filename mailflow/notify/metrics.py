"""The Notifications API's part of /metrics: requests per API key and answer, events per type, and each
webhook subscriber's deliveries, backlog and state (a disabled one shows as 0 in ..._enabled)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.models import ApiKey, Event, WebhookSubscriber
from mailflow.notify.events import last_seq


def notify_metrics(session: Session) -> Iterator[Metric]:
    requests = CounterMetricFamily("mailflow_api_requests", "Notifications API requests by key and answer",
                                   labels=["key", "outcome"])
    for name, allowed, rate_limited, refused in session.execute(
        select(ApiKey.name, ApiKey.allowed, ApiKey.rate_limited, ApiKey.refused).order_by(ApiKey.name)
    ):
        requests.add_metric([name, "allowed"], allowed)
        requests.add_metric([name, "rate_limited"], rate_limited)
        requests.add_metric([name, "refused"], refused)
    yield requests

    events = GaugeMetricFamily("mailflow_events", "Events recorded (kept) by type", labels=["type"])
    for event_type, count in session.execute(select(Event.type, func.count()).group_by(Event.type)):
        events.add_metric([event_type], count)
    yield events

    top = last_seq(session)
    delivered = CounterMetricFamily("mailflow_webhook_delivered", "Events delivered per subscriber",
                                    labels=["subscriber"])
    behind = GaugeMetricFamily("mailflow_webhook_backlog", "Events (of any type) after a subscriber's cursor",
                               labels=["subscriber"])
    enabled = GaugeMetricFamily("mailflow_webhook_enabled", "1 while a subscriber is enabled, else 0",
                                labels=["subscriber"])
    for row in session.scalars(select(WebhookSubscriber).order_by(WebhookSubscriber.id)):
        label = [str(row.id)]
        delivered.add_metric(label, row.delivered)
        behind.add_metric(label, max(0, top - row.cursor))
        enabled.add_metric(label, 0 if row.disabled_at is not None else 1)
    yield delivered
    yield behind
    yield enabled
