"""A relay that refuses our login (535) is our configuration's or the relay's trouble, not the recipients':
the mails wait for a retry instead of failing for good, the tick stops trying, and once the relay takes
the credentials the next tick sends them. Against a real aiosmtpd server that advertises AUTH."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, update

from mailflow.context import AppContext
from mailflow.mail.capture import start_controller
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus
from mailflow.timeutil import now
from tests.mail.helpers import ScriptedSink, outbox_row, queue_mail

USER, PASSWORD = "mailflow", "s3cret-relay-pass"


@dataclass
class Gate:
    """aiosmtpd's authenticator: refuses every login until ``accept`` is set; notes each SMTP session
    that tried to log in."""

    accept: bool = False
    sessions: set[int] = field(default_factory=set)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        self.sessions.add(id(session))
        ok = (self.accept and isinstance(auth_data, LoginPassword)
              and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def auth_sink(gate: Gate) -> Iterator[ScriptedSink]:
    handler = ScriptedSink()
    controller = start_controller(handler, 0, authenticator=gate, auth_require_tls=False)
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def auth_ctx(ctx: AppContext, auth_sink: ScriptedSink) -> AppContext:
    ctx.settings = ctx.settings.updated(smtp={
        "mode": "relay", "host": "127.0.0.1", "port": auth_sink.port, "timeout_seconds": 10,
        "starttls": False, "username": USER, "password": PASSWORD})
    return ctx


def details(ctx: AppContext, outbox_id: int) -> list[tuple[str, int | None, str]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.outbox_id == outbox_id)
                               .order_by(OutboxEvent.id))
        return [(e.to_status, e.smtp_code, e.detail or "") for e in rows]


def make_all_due(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=now() - timedelta(seconds=1)))


def test_a_refused_login_retries_the_mails_and_they_go_once_the_relay_accepts(
    auth_ctx: AppContext, auth_sink: ScriptedSink, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [queue_mail(auth_ctx, f"user{i}@example.com") for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="mailflow.mail.dispatch"):
        report = run_dispatch(auth_ctx, threading.Event())
    assert report.results == {"retry": 3}
    assert auth_sink.received == []
    assert len(gate.sessions) == 1  # one refused session, not one per mail
    for outbox_id in ids:
        row = outbox_row(auth_ctx, outbox_id)
        assert row.status == OutboxStatus.RETRY and row.attempts == 1
        assert row.next_attempt_at > now() + timedelta(minutes=3)  # the normal backoff, not at once
        to_status, code, detail = details(auth_ctx, outbox_id)[-1]
        assert (to_status, code) == ("retry", 535)
        assert "5.7.8" in detail and "Authentication credentials invalid" in detail
    warnings = [r for r in caplog.records if r.name == "mailflow.mail.dispatch"]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage() and "535" in warnings[0].getMessage()
    assert PASSWORD not in caplog.text

    gate.accept = True
    make_all_due(auth_ctx)
    assert run_dispatch(auth_ctx, threading.Event()).results == {"sent": 3}
    assert sorted(r.rcpt_tos[0] for r in auth_sink.received) == [f"user{i}@example.com" for i in range(3)]
    assert [outbox_row(auth_ctx, i).status for i in ids] == ["sent"] * 3


def test_the_tick_claims_no_further_batch_after_a_refused_login(auth_ctx: AppContext, gate: Gate) -> None:
    auth_ctx.settings = auth_ctx.settings.updated(schedule={"dispatch_batch": 2})
    ids = [queue_mail(auth_ctx, f"user{i}@example.com") for i in range(5)]
    report = run_dispatch(auth_ctx, threading.Event())
    assert report.claimed == 2 and report.results == {"retry": 2}
    assert [outbox_row(auth_ctx, i).status for i in ids] == ["retry"] * 2 + ["queued"] * 3
    assert len(gate.sessions) == 1


def test_a_relay_that_cannot_be_reached_is_a_retry_for_the_whole_batch(ctx: AppContext) -> None:
    handler = ScriptedSink()
    controller = start_controller(handler, 0)
    port = controller.port
    controller.stop()  # nothing listens on this port any more: connections are refused
    ctx.settings = ctx.settings.updated(smtp={"mode": "relay", "host": "127.0.0.1", "port": port,
                                              "timeout_seconds": 10})
    ids = [queue_mail(ctx, f"user{i}@example.com") for i in range(3)]
    assert run_dispatch(ctx, threading.Event()).results == {"retry": 3}
    for outbox_id in ids:
        row = outbox_row(ctx, outbox_id)
        assert row.status == OutboxStatus.RETRY and "network error" in (row.last_reply or "")
