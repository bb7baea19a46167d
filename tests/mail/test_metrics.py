"""GET /metrics counts from the database at scrape time."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mailflow.context import AppContext
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import BounceRecipient, InboundMessage, Suppression
from mailflow.web.app import create_app
from tests.mail.helpers import ScriptedSink, queue_mail


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_outbox_states_by_template(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.rcpt_replies["bad@example.com"] = "550 5.1.1 unknown"
    queue_mail(relay_ctx, "a@example.com")
    queue_mail(relay_ctx, "bad@example.com")
    run_dispatch(relay_ctx, threading.Event())
    queue_mail(relay_ctx, "c@example.com", template="account-approved")
    # In relay mode only this host's own clients scrape without a token (a Prometheus beside it).
    with TestClient(create_app(relay_ctx), client=("127.0.0.1", 40000)) as local:
        got = samples(local)
    key = "mailflow_outbox_messages"
    assert got[(key, (("status", "sent"), ("template", "registration-received")))] == 1
    assert got[(key, (("status", "failed"), ("template", "registration-received")))] == 1
    assert got[(key, (("status", "queued"), ("template", "account-approved")))] == 1
    assert got[("mailflow_outbox_oldest_due_seconds", ())] >= 0


def test_inbound_bounces_and_suppressions(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        inbound = InboundMessage(source="smtp", sha256="0" * 64, size=10, status="processed", kind="bounce")
        session.add(inbound)
        session.flush()
        session.add(BounceRecipient(inbound_id=inbound.id, address="x@example.com", action="failed",
                                    hard=True, reason="userunknown"))
        session.add(Suppression(address_key="x@example.com", reason="hard-bounce"))
    got = samples(client)
    assert got[("mailflow_inbound_messages", (("kind", "bounce"), ("status", "processed")))] == 1
    assert got[("mailflow_bounce_recipients", (("hard", "true"), ("reason", "userunknown")))] == 1
    assert got[("mailflow_suppressions_active", ())] == 1
