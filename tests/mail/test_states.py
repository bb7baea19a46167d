"""The outbox state machine (mailflow.mail.states): every way into every final state leaves no raw link in
the row, whichever writer took it there — enqueue to a suppressed address, dispatch's recording (sent, a
permanent refusal, giving up, suppressed at send time), and suppressing an address with mail waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mailflow.context import AppContext
from mailflow.mail import states, suppression
from mailflow.mail.dispatch import run_dispatch
from mailflow.mail.outbox import enqueue, transition
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.timeutil import now
from tests.mail.helpers import ScriptedSink, outbox_row, queue_mail, serve

LINK = {"name": "王小明", "verify_url": "https://pass.example/verify/raw-secret"}


@pytest.fixture
def sink() -> Iterator[ScriptedSink]:
    yield from serve(ScriptedSink(pipelining=True))


def assert_final_without_link(ctx: AppContext, outbox_id: int, final: OutboxStatus) -> None:
    row = outbox_row(ctx, outbox_id)
    assert row.status == final and row.status in states.FINAL
    assert not states.holds_secrets(row.context), row.context
    assert row.context.get("name") == "王小明"  # only the links go
    assert row.claimed_by is None and row.lease_expires_at is None


def queued_link(ctx: AppContext, to: str) -> int:
    return queue_mail(ctx, to, template="account-approved", context=dict(LINK))


def test_queued_with_a_link_then_the_address_is_suppressed(ctx: AppContext) -> None:
    """The defect of issue 16: suppression moved waiting rows by hand and left their verify_url."""
    outbox_id = queued_link(ctx, "late@example.com")
    assert "verify_url" in outbox_row(ctx, outbox_id).context
    with ctx.db.session() as session:
        suppression.suppress(session, "late@example.com", "hard_bounce", "550 5.1.1")
    assert_final_without_link(ctx, outbox_id, OutboxStatus.SUPPRESSED)


def test_enqueued_to_an_address_already_suppressed(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        suppression.suppress(session, "gone@example.com", "hard_bounce", "550 5.1.1")
    with ctx.db.session() as session:
        row = enqueue(session, "account-approved", "gone@example.com", message_id_domain="twport.com.tw",
                      context=dict(LINK))
        outbox_id = row.id
    assert_final_without_link(ctx, outbox_id, OutboxStatus.SUPPRESSED)


@pytest.mark.parametrize(("reply", "final"), [(None, OutboxStatus.SENT),
                                              ("550 5.1.1 user unknown", OutboxStatus.FAILED)])
def test_dispatch_records_a_final_result(relay_ctx: AppContext, sink: ScriptedSink, reply: str | None,
                                         final: OutboxStatus) -> None:
    if reply:
        sink.data_replies["who@example.com"] = [reply]
    outbox_id = queued_link(relay_ctx, "who@example.com")
    run_dispatch(relay_ctx, threading.Event())
    assert_final_without_link(relay_ctx, outbox_id, final)


def test_dispatch_gives_up_after_the_retry_window(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.data_replies["slow@example.com"] = ["451 4.3.0 try later"]
    outbox_id = queued_link(relay_ctx, "slow@example.com")
    with relay_ctx.db.session() as session:  # created long ago: this 4xx is past the give-up time
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                        .values(created_at=now() - timedelta(hours=relay_ctx.settings.schedule
                                                             .retry_give_up_hours + 1)))
    run_dispatch(relay_ctx, threading.Event())
    assert_final_without_link(relay_ctx, outbox_id, OutboxStatus.FAILED)


def test_suppressed_at_send_time(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    outbox_id = queued_link(relay_ctx, "between@example.com")
    with relay_ctx.db.session() as session:  # listed without touching the queued row, as a racing worker
        session.add(Suppression(address_key="between@example.com", reason="complaint"))
    run_dispatch(relay_ctx, threading.Event())
    assert_final_without_link(relay_ctx, outbox_id, OutboxStatus.SUPPRESSED)
    assert sink.to("between@example.com") == []


def test_every_move_is_in_the_table_and_nothing_leaves_sent(ctx: AppContext) -> None:
    outbox_id = queued_link(ctx, "table@example.com")
    with ctx.db.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        with pytest.raises(states.TransitionError):
            transition(session, row, OutboxStatus.SENT)  # queued -> sent skips sending
        transition(session, row, OutboxStatus.SENDING)
        transition(session, row, OutboxStatus.SENT)
        for target in OutboxStatus:
            with pytest.raises(states.TransitionError):
                transition(session, row, target)
    with ctx.db.session() as session:
        moves = session.execute(select(OutboxEvent.from_status, OutboxEvent.to_status)
                                .where(OutboxEvent.outbox_id == outbox_id).order_by(OutboxEvent.id)).all()
    assert [tuple(m) for m in moves] == [("", "queued"), ("queued", "sending"), ("sending", "sent")]
    # Every state can be reached from a new row, and every final state but 'sent' can be left again.
    reachable, frontier = set(), {states.NEW}
    while frontier:
        here = frontier.pop()
        for there in states.ALLOWED[here]:
            if there not in reachable:
                reachable.add(there)
                frontier.add(there)
    assert reachable == set(OutboxStatus)
    assert [s for s in states.FINAL if not states.ALLOWED[s]] == [OutboxStatus.SENT]
