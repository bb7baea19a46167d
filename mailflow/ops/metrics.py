"""The metrics /metrics serves (mailflow.web.metrics), computed from the database at scrape time (a custom
collector), so every worker reports the same truth and nothing is lost on restart: outbox mails by template
and state, the age of the oldest due mail, inbound mail by kind and state, bounced recipients by reason,
active suppressions, and the Notifications API's requests per key and events per type
(mailflow.notify.metrics)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from mailflow.db import Database
from mailflow.mail import states
from mailflow.models import BounceRecipient, InboundMessage, OutboxMessage, Suppression
from mailflow.notify.metrics import notify_metrics
from mailflow.timeutil import now


class MailflowCollector:
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            outbox = GaugeMetricFamily("mailflow_outbox_messages", "Outgoing mails by template and state",
                                       labels=["template", "status"])
            for template, mail_status, count in session.execute(
                select(OutboxMessage.template, OutboxMessage.status, func.count())
                .group_by(OutboxMessage.template, OutboxMessage.status)
            ):
                outbox.add_metric([template, mail_status], count)
            yield outbox

            oldest = session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                                    .where(OutboxMessage.status.in_(states.DUE)))
            age = max(0.0, (now() - oldest).total_seconds()) if oldest else 0.0
            yield GaugeMetricFamily("mailflow_outbox_oldest_due_seconds",
                                    "How long the oldest due mail has waited (0 when none is due)", value=age)

            inbound = GaugeMetricFamily("mailflow_inbound_messages", "Received mails by kind and state",
                                        labels=["kind", "status"])
            for kind, status, count in session.execute(
                select(InboundMessage.kind, InboundMessage.status, func.count())
                .group_by(InboundMessage.kind, InboundMessage.status)
            ):
                inbound.add_metric([kind or "unknown", status], count)
            yield inbound

            bounces = GaugeMetricFamily("mailflow_bounce_recipients",
                                        "Bounced recipients by reason", labels=["reason", "hard"])
            for reason, hard, count in session.execute(
                select(BounceRecipient.reason, BounceRecipient.hard, func.count())
                .group_by(BounceRecipient.reason, BounceRecipient.hard)
            ):
                bounces.add_metric([reason, "true" if hard else "false"], count)
            yield bounces

            active = session.scalar(select(func.count()).select_from(Suppression)
                                    .where(Suppression.lifted_at.is_(None))) or 0
            yield GaugeMetricFamily("mailflow_suppressions_active", "Addresses we do not mail", value=active)
            yield from notify_metrics(session)


def exposition(db: Database) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MailflowCollector(db))
    return generate_latest(registry)
