"""A relay that misbehaves must not lose a mail nor a verification link. Against a real aiosmtpd server
scripted with the faults seen from relays — DATA refused with the transaction left open, a refused
content the server does not reset, "503 nested MAIL command", 421 and hanging up mid-session — each run
with and without PIPELINING. After each, every mail is sent or waits for a retry with its link intact;
one the relay refused for good can be queued again and gets a fresh link."""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailflow.accounts.tokens import TokenError, load_token
from mailflow.accounts.verification import send_verification_mail
from mailflow.context import AppContext
from mailflow.mail.dispatch import run_dispatch
from mailflow.mail.relay import REOPENS_PER_TICK, SESSION_TRIES
from mailflow.mail.retry import retry
from mailflow.mail.returnpath import make_return_path
from mailflow.models import OutboxMessage, OutboxStatus
from tests.factories import make_applicant
from tests.mail.helpers import EITHER_WAY, ScriptedSink, outbox_row, queue_mail, serve

NESTED = "503 5.5.1 Error: nested MAIL command"
LINK = re.compile(r"https?://\S+/verify/\S+")


@pytest.fixture(params=EITHER_WAY)
def sink(request: pytest.FixtureRequest) -> Iterator[ScriptedSink]:
    yield from serve(ScriptedSink(pipelining=request.param))


def verification_mail(ctx: AppContext, name: str) -> int:
    """An account-approved mail with a real one-time link, queued as approval queues it."""
    with ctx.db.session() as session:
        ubn = f"{zlib.crc32(name.encode()) % 10**8:08d}"
        account, _ = make_applicant(session, account=name, email=f"{name}@example.com", ubn=ubn)
        return send_verification_mail(session, ctx.settings, account, "account-approved").id


def link_works(ctx: AppContext, text: str) -> bool:
    [url] = LINK.findall(text)
    with ctx.db.session() as session:
        try:
            load_token(session, ctx.settings, url.rsplit("/", 1)[1])
        except TokenError:
            return False
    return True


def received_text(sink: ScriptedSink, address: str) -> str:
    [got] = sink.to(address)
    part = got.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def assert_nothing_lost(ctx: AppContext, sink: ScriptedSink) -> None:
    """Every mail sent once, or waiting for a retry; a verification mail either arrived with a working
    link or still holds one."""
    with ctx.db.session() as session:
        rows = list(session.scalars(select(OutboxMessage)))
    for row in rows:
        assert row.status in (OutboxStatus.SENT, OutboxStatus.RETRY), (row.to_address, row.last_reply)
        if row.status == OutboxStatus.SENT:
            assert len(sink.to(row.to_address)) == 1, row.to_address
        if row.template == "account-approved":
            text = received_text(sink, row.to_address) if row.status == OutboxStatus.SENT else \
                str(row.context["verify_url"])
            assert link_works(ctx, text), row.to_address


def test_a_refused_data_leaves_the_transaction_open_and_the_next_mail_still_goes(
        relay_ctx: AppContext, sink: ScriptedSink) -> None:
    """The relay refuses DATA but keeps the transaction (a data restriction): without RSET the next
    MAIL gets "503 nested MAIL command" and that mail, an account-approved, was failed for good."""
    sink.refuse_data["first@example.com"] = ["554 5.7.1 <first@example.com>: DATA refused"]
    first = queue_mail(relay_ctx, "first@example.com")
    approved = verification_mail(relay_ctx, "second")
    third = queue_mail(relay_ctx, "third@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"failed": 1, "sent": 2}
    assert outbox_row(relay_ctx, first).last_reply == "554 5.7.1 <first@example.com>: DATA refused"
    assert outbox_row(relay_ctx, approved).status == OutboxStatus.SENT
    assert outbox_row(relay_ctx, third).status == OutboxStatus.SENT
    assert link_works(relay_ctx, received_text(sink, "second@example.com"))
    assert sink.sessions == 1  # RSET, not a new session, put it right


def test_a_refused_content_the_relay_does_not_reset(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.data_replies["first@example.com"] = ["554 5.7.1 message refused"]
    sink.keep_transaction.add("first@example.com")
    first = queue_mail(relay_ctx, "first@example.com")
    approved = verification_mail(relay_ctx, "second")
    queue_mail(relay_ctx, "third@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"failed": 1, "sent": 2}
    assert outbox_row(relay_ctx, first).status == OutboxStatus.FAILED
    assert outbox_row(relay_ctx, approved).status == OutboxStatus.SENT
    assert link_works(relay_ctx, received_text(sink, "second@example.com"))
    # Lockstep knows of the refusal before the next MAIL and resets; pipelined, the next MAIL was on its
    # way, met the 503 and went again on a new session.
    assert sink.sessions == (2 if sink.pipelining else 1)


def test_503_to_mail_is_the_session_not_the_recipient(relay_ctx: AppContext, sink: ScriptedSink) -> None:
    approved = verification_mail(relay_ctx, "second")
    sink.mail_replies[make_return_path(relay_ctx.settings, approved)] = [NESTED]
    queue_mail(relay_ctx, "third@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"sent": 2}
    assert sink.sessions == 2  # a new session, then it went
    assert_nothing_lost(relay_ctx, sink)


def test_a_session_that_keeps_failing_a_mail_leaves_it_waiting_with_its_link(
        relay_ctx: AppContext, sink: ScriptedSink) -> None:
    approved = verification_mail(relay_ctx, "second")
    sink.mail_replies[make_return_path(relay_ctx.settings, approved)] = [NESTED] * SESSION_TRIES
    after = queue_mail(relay_ctx, "third@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"retry": 1, "sent": 1}
    row = outbox_row(relay_ctx, approved)
    assert row.status == OutboxStatus.RETRY and row.last_reply is not None and NESTED in row.last_reply
    assert outbox_row(relay_ctx, after).status == OutboxStatus.SENT
    assert_nothing_lost(relay_ctx, sink)


@pytest.mark.parametrize("where", ["MAIL", "RCPT", "content"])
def test_421_and_hanging_up_mid_session(relay_ctx: AppContext, sink: ScriptedSink, where: str) -> None:
    before = queue_mail(relay_ctx, "before@example.com")
    approved = verification_mail(relay_ctx, "second")
    queue_mail(relay_ctx, "after@example.com")
    closing = "421 4.3.2 Service shutting down"
    if where == "MAIL":
        sender = make_return_path(relay_ctx.settings, approved)
        sink.mail_replies[sender] = [closing]
        sink.hang_up_after.add(sender)
    elif where == "RCPT":
        sink.rcpt_replies["second@example.com"] = closing
        sink.hang_up_after.add("second@example.com")
    else:
        sink.data_replies["second@example.com"] = [closing]
        sink.hang_up_after.add("second@example.com")
    report = run_dispatch(relay_ctx, threading.Event())
    if where == "RCPT":  # the script answers every RCPT to it so: it waits for a retry, link kept
        assert report.results == {"sent": 2, "retry": 1}
    else:
        assert report.results == {"sent": 3}
    assert outbox_row(relay_ctx, before).status == OutboxStatus.SENT
    assert sink.sessions >= 2
    assert_nothing_lost(relay_ctx, sink)


def test_a_verification_mail_failed_for_good_is_queued_again_with_a_fresh_link(
        relay_ctx: AppContext, sink: ScriptedSink) -> None:
    sink.rcpt_replies["second@example.com"] = "550 5.1.1 mailbox unavailable"
    approved = verification_mail(relay_ctx, "second")
    with relay_ctx.db.session() as session:
        old_link = str(session.get(OutboxMessage, approved).context["verify_url"])  # type: ignore[union-attr]
    run_dispatch(relay_ctx, threading.Event())
    row = outbox_row(relay_ctx, approved)
    assert row.status == OutboxStatus.FAILED and "verify_url" not in row.context  # erased when final

    del sink.rcpt_replies["second@example.com"]  # the mailbox works again
    with relay_ctx.db.session() as session:
        _, renewed = retry(session, relay_ctx.settings, approved)
    assert renewed
    run_dispatch(relay_ctx, threading.Event())
    assert outbox_row(relay_ctx, approved).status == OutboxStatus.SENT
    new_text = received_text(sink, "second@example.com")
    assert old_link not in new_text and link_works(relay_ctx, new_text)
    assert not link_works(relay_ctx, old_link)  # voided by the fresh one


def test_a_relay_that_keeps_breaking_sessions_is_given_up_on_for_the_tick(
        relay_ctx: AppContext, sink: ScriptedSink) -> None:
    """Every mail meets 503 however often the session is opened: after REOPENS_PER_TICK new sessions the
    tick stops, and every mail waits for a retry (none failed, the verification mail keeps its link)."""
    addresses = [f"r{i}@example.com" for i in range(10)]
    for address in addresses:
        sink.rcpt_replies[address] = "503 5.5.1 Error: bad sequence of commands"
    ids = [queue_mail(relay_ctx, address) for address in addresses[:-1]]
    ids.append(verification_mail(relay_ctx, "r9"))
    report = run_dispatch(relay_ctx, threading.Event())
    assert report.results == {"retry": 10} and report.link_down is not None
    assert sink.sessions == REOPENS_PER_TICK + 1  # the first session and the re-opened ones
    rows = [outbox_row(relay_ctx, i) for i in ids]
    assert all(row.status == OutboxStatus.RETRY for row in rows)
    assert link_works(relay_ctx, str(rows[-1].context["verify_url"]))
