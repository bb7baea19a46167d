"""Dispatch against a real SMTP server: every reply class ends in the right persisted state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail.dispatch import retry_delay, run_dispatch
from mailflow.mail.returnpath import parse_tag
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.timeutil import now
from tests.mail.helpers import EITHER_WAY, ScriptedSink, outbox_row, queue_mail, serve


@pytest.fixture(params=EITHER_WAY)
def sink(request: pytest.FixtureRequest) -> Iterator[ScriptedSink]:
    """Every case below against a relay without PIPELINING and one that offers it."""
    yield from serve(ScriptedSink(pipelining=request.param))


def events(ctx: AppContext, outbox_id: int) -> list[tuple[str, str, int | None]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.outbox_id == outbox_id)
                               .order_by(OutboxEvent.id))
        return [(e.from_status, e.to_status, e.smtp_code) for e in rows]


def make_due(ctx: AppContext, outbox_id: int) -> None:
    with ctx.db.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                        .values(next_attempt_at=now() - timedelta(seconds=1)))


def test_a_queued_mail_is_sent_with_a_signed_return_path(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "alice@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"sent": 1}
    [got] = sink.to("alice@example.com")
    assert parse_tag(relay_ctx.settings, got.mail_from) == (outbox_id, True)
    assert got.mail_from.endswith("@bounces.twport.com.tw")
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.SENT and row.attempts == 1 and row.sent_at is not None
    assert got.message["Message-ID"] == row.message_id
    assert row.last_reply == "250 2.0.0 Ok: queued as TEST"
    assert events(relay_ctx, outbox_id) == [("", "queued", None), ("queued", "sending", None),
                                            ("sending", "sent", 250)]


def test_4xx_is_retried_later_and_then_succeeds(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.data_replies["bob@example.com"] = ["451 4.3.0 try again later"]
    outbox_id = queue_mail(relay_ctx, "bob@example.com")
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.RETRY and row.last_reply == "451 4.3.0 try again later"
    # the first retry waits retry_first_minutes (5) with ±20% jitter
    assert timedelta(minutes=3.9) < row.next_attempt_at - now() < timedelta(minutes=6.1)
    assert run_dispatch(relay_ctx, threading.Event()).claimed == 0  # not due yet
    make_due(relay_ctx, outbox_id)
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert len(sink.to("bob@example.com")) == 1
    assert [e[1:] for e in events(relay_ctx, outbox_id)][2:] == [("retry", 451), ("sending", None),
                                                                 ("sent", 250)]


def test_5xx_fails_at_once(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.rcpt_replies["nobody@example.com"] = "550 5.1.1 user unknown"
    outbox_id = queue_mail(relay_ctx, "nobody@example.com", template="account-approved")
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.FAILED and row.last_reply == "550 5.1.1 user unknown"
    assert "verify_url" not in row.context  # the raw token is gone once the mail is final
    assert events(relay_ctx, outbox_id)[-1] == ("sending", "failed", 550)


def test_a_refused_recipient_does_not_fail_the_others(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.rcpt_replies["b@example.com"] = "550 5.1.1 no such user"
    sink.rcpt_replies["c@example.com"] = "452 4.2.2 mailbox full"
    ids = [queue_mail(relay_ctx, f"{x}@example.com") for x in "abcd"]
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"sent": 2, "failed": 1, "retry": 1}
    assert [outbox_row(relay_ctx, i).status for i in ids] == ["sent", "failed", "retry", "sent"]
    assert {r.rcpt_tos[0] for r in sink.received} == {"a@example.com", "d@example.com"}


def test_a_connection_dropped_mid_data_is_retried_and_the_rest_still_go(
    relay_ctx: AppContext, sink: ScriptedSink
) -> None:
    sink.drop_in_data.add("first@example.com")
    first = queue_mail(relay_ctx, "first@example.com")
    second = queue_mail(relay_ctx, "second@example.com")
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, first)
    assert row.status == OutboxStatus.RETRY and "network error" in (row.last_reply or "")
    assert outbox_row(relay_ctx, second).status == OutboxStatus.SENT  # reconnected and went on
    make_due(relay_ctx, first)
    run_dispatch(relay_ctx, threading.Event())
    assert outbox_row(relay_ctx, first).status == OutboxStatus.SENT
    assert len(sink.to("first@example.com")) == 1


def test_an_unreachable_relay_means_retry_not_loss(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        relay_ctx.settings = relay_ctx.settings.updated(smtp={"port": s.getsockname()[1]})
    outbox_id = queue_mail(relay_ctx, "x@example.com")
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.RETRY and row.claimed_by is None


def test_retries_give_up_after_the_configured_time(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.data_replies["late@example.com"] = ["451 4.3.0 try again later"]
    outbox_id = queue_mail(relay_ctx, "late@example.com")
    with relay_ctx.db.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                        .values(created_at=now() - timedelta(hours=121)))
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.FAILED and (row.last_reply or "").startswith("gave up after 1 attempts")


def test_backoff_doubles_and_is_capped(settings: Settings) -> None:
    middle = lambda: 0.5  # noqa: E731  (no jitter)
    delays = [retry_delay(settings.schedule, n, middle) for n in (1, 2, 3, 10)]
    assert delays == [timedelta(minutes=m) for m in (5, 10, 20, 240)]
    assert retry_delay(settings.schedule, 1, lambda: 0.0) == timedelta(minutes=4)


def test_a_suppressed_address_is_not_sent(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "Gone@Example.com")
    with relay_ctx.db.session() as session:  # suppressed after queueing, before sending
        session.add(Suppression(address_key="gone@example.com", reason="hard-bounce"))
    run_dispatch(relay_ctx, threading.Event())
    assert outbox_row(relay_ctx, outbox_id).status == OutboxStatus.SUPPRESSED
    assert sink.received == []


def test_an_expired_lease_is_reclaimed_and_sent(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "stuck@example.com")
    with relay_ctx.db.session() as session:  # a worker claimed it and died
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
            status=OutboxStatus.SENDING, claimed_by="dead:1", lease_expires_at=now() - timedelta(seconds=1)))
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.reclaimed == 1
    assert outbox_row(relay_ctx, outbox_id).status == OutboxStatus.SENT
    assert ("sending", "retry", None) in events(relay_ctx, outbox_id)


def test_a_live_lease_is_left_alone(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "busy@example.com")
    with relay_ctx.db.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
            status=OutboxStatus.SENDING, claimed_by="other:2", lease_expires_at=now() + timedelta(minutes=5)))
    assert run_dispatch(relay_ctx, threading.Event()).reclaimed == 0
    assert outbox_row(relay_ctx, outbox_id).status == OutboxStatus.SENDING
    assert sink.received == []


def test_stopping_releases_the_unsent_claimed_mails(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    ids = [queue_mail(relay_ctx, f"s{i}@example.com") for i in range(5)]
    stop = threading.Event()

    original = sink.handle_DATA

    async def stop_after_two(server: Any, session: Any, envelope: Any) -> str:
        reply = await original(server, session, envelope)
        if len(sink.received) == 2:
            stop.set()
        return reply

    sink.handle_DATA = stop_after_two  # type: ignore[method-assign]
    report = run_dispatch(relay_ctx, stop)
    statuses = [outbox_row(relay_ctx, i).status for i in ids]
    assert statuses == ["sent", "sent", "queued", "queued", "queued"]
    assert report.released == 3
    assert all(outbox_row(relay_ctx, i).claimed_by is None for i in ids)
    run_dispatch(relay_ctx, threading.Event())
    assert len(sink.received) == 5


def test_a_mail_that_cannot_be_built_fails_with_the_reason(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "not an address")
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.FAILED and "unusable mail address" in (row.last_reply or "")


def test_more_mails_than_a_record_group_each_get_their_transitions_and_delivery(
    relay_ctx: AppContext, sink: ScriptedSink
) -> None:
    from mailflow.mail.dispatch import RECORD_EVERY
    from mailflow.models import AddressHealth

    count = RECORD_EVERY + 7
    ids = [queue_mail(relay_ctx, f"g{i}@example.com") for i in range(count)]
    with relay_ctx.db.session() as session:  # one address had soft bounces: a delivery resets them
        session.add(AddressHealth(address_key="g3@example.com", soft_bounces=3))
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"sent": count} and len(sink.received) == count
    with relay_ctx.db.session() as session:
        steps = session.execute(select(OutboxEvent.outbox_id, OutboxEvent.to_status, OutboxEvent.smtp_code)
                                .order_by(OutboxEvent.id)).all()
        health = {h.address_key: h for h in session.scalars(select(AddressHealth))}
    for outbox_id in ids:
        assert [(s, c) for i, s, c in steps if i == outbox_id] == [("queued", None), ("sending", None),
                                                                   ("sent", 250)]
    assert len(health) == count and health["g3@example.com"].soft_bounces == 0
    assert all(h.last_delivery_at is not None for h in health.values())
    rows = [outbox_row(relay_ctx, i) for i in ids]
    assert all(r.attempts == 1 and r.claimed_by is None and r.lease_expires_at is None for r in rows)


def test_a_sent_mail_loses_its_raw_token(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queue_mail(relay_ctx, "token@example.com", template="account-approved")
    assert "verify_url" in outbox_row(relay_ctx, outbox_id).context
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.SENT and "verify_url" not in row.context
    assert row.context["name"] == "王小明"  # only the secrets go
    [got] = sink.to("token@example.com")
    text = got.message.get_body(("plain",))
    assert text is not None and "http://testserver/verify/sample-token" in text.get_content()


def test_a_result_for_a_reclaimed_row_is_still_recorded(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    from mailflow.mail.dispatch import Claimed, Outcome, TickReport, claim_batch, record

    outbox_id = queue_mail(relay_ctx, "late@example.com")
    [claimed] = claim_batch(relay_ctx, 10, now())
    assert isinstance(claimed, Claimed)
    with relay_ctx.db.session() as session:  # meanwhile another worker took it over after a lease lapse
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                        .values(status=OutboxStatus.RETRY, claimed_by="other:9"))
    report = TickReport()
    record(relay_ctx, [(claimed, Outcome(OutboxStatus.SENT, 250, "250 ok"))], report)
    row = outbox_row(relay_ctx, outbox_id)
    assert report.results == {"sent": 1} and row.status == OutboxStatus.SENT and row.claimed_by is None
    assert events(relay_ctx, outbox_id)[-1] == ("retry", "sent", 250)


def test_a_line_starting_with_a_dot_is_stuffed_and_arrives_intact(relay_ctx: AppContext,
                                                                    sink: ScriptedSink) -> None:
    from mailflow.mail.dispatch import SmtpLink

    raw = b"Subject: dots\r\nTo: d@example.com\r\n\r\n.first\r\nmiddle\r\n..second\r\n.\r\nend"
    link = SmtpLink(relay_ctx.settings, relay_ctx.smtp_port())
    try:
        outcome = link.send("bounce+1-x@bounces.twport.com.tw", "d@example.com", raw)
    finally:
        link.close()
    assert outcome.status == OutboxStatus.SENT
    [got] = sink.to("d@example.com")
    assert got.raw.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n") + b"\n"
