"""The inbound SMTP server end to end with smtplib: stored before 250, our domains only, a size limit."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.inbound.smtp_server import InboundServer, accepted_domains, start_inbound_server
from mailflow.mail.returnpath import make_return_path
from mailflow.models import Account, InboundMessage, InboundStatus, SupportKind
from tests.factories import add_applicant
from tests.inbound.test_intake_helpers import dsn, inbound_rows, items, reply, sent_mail, suppressed


@pytest.fixture
def server(ctx: AppContext) -> Iterator[InboundServer]:
    # the server picks a free port
    ctx.settings = ctx.settings.updated(
        inbound={"smtp_host": "127.0.0.1", "smtp_port": 0, "max_message_bytes": 200_000},
        mail={"reply_address": "客服 <reply@reply.twport.com.tw>"})
    running = start_inbound_server(ctx)
    yield running
    running.stop()


def send(server: InboundServer, rcpt: str, raw: bytes, mail_from: str = "") -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(server.host, server.port, timeout=30) as smtp:
        return smtp.sendmail(mail_from, [rcpt], raw)


def test_accepted_domains_are_ours(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(mail={"reply_address": "reply@Reply.Twport.com.tw"})
    assert accepted_domains(ctx.settings) == {"bounces.twport.com.tw", "twport.com.tw", "reply.twport.com.tw"}


def test_bounce_to_its_return_path_is_stored_and_processed(ctx: AppContext, server: InboundServer) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    rcpt = make_return_path(ctx.settings, mail.id)
    assert send(server, rcpt, dsn(ctx.settings, mail)) == {}
    server.drain()
    with ctx.db.session() as session:
        [row] = inbound_rows(session)
        assert (row.source, row.status, row.kind) == ("smtp", InboundStatus.PROCESSED, "bounce")
        assert row.outbox_id == mail.id
        assert row.envelope_to == rcpt and row.raw is not None and row.sha256
        assert suppressed(session, who.email)
        account = session.get(Account, who.account_id)
        assert account is not None and account.email_undeliverable
        assert [i.kind for i in items(session)] == [SupportKind.HARD_BOUNCE]


def test_reply_to_the_reply_address_is_accepted(ctx: AppContext, server: InboundServer) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, "registration-received")
    raw = reply(who.email, "請問進度", in_reply_to=mail.message_id)
    send(server, "reply@reply.twport.com.tw", raw, who.email)
    server.drain()
    with ctx.db.session() as session:
        assert [(i.kind, i.account_id) for i in items(session)] == [(SupportKind.REPLY, who.account_id)]


def test_relay_to_another_domain_is_refused_with_550(ctx: AppContext, server: InboundServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(server, "victim@gmail.com", b"Subject: spam\r\n\r\nbuy\r\n")
    code, text = refused.value.recipients["victim@gmail.com"]
    assert code == 550 and b"5.7.1" in text
    with ctx.db.session() as session:
        assert inbound_rows(session) == []


def test_oversize_mail_is_refused_with_552_and_not_stored(ctx: AppContext, server: InboundServer) -> None:
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 300
    with smtplib.SMTP(server.host, server.port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("")
        smtp.rcpt(make_return_path(ctx.settings, 1))
        code, _ = smtp.data(big)
    assert code == 552
    with ctx.db.session() as session:
        assert inbound_rows(session) == []


def test_forged_tag_over_smtp_is_recorded_and_ignored(ctx: AppContext, server: InboundServer) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    forged = f"bounce+{mail.id}-abcdefghijklmnop@{ctx.settings.mail.bounce_domain}"
    send(server, forged, dsn(ctx.settings, mail, return_path=forged))
    server.drain()
    with ctx.db.session() as session:
        [row] = inbound_rows(session)
        assert row.forged and row.status == InboundStatus.PROCESSED
        assert not suppressed(session, who.email) and items(session) == []


def test_store_failure_answers_451_and_the_sender_keeps_the_mail(ctx: AppContext,
                                                                  server: InboundServer) -> None:
    # The database loses its table: nothing can be committed, so nothing may be acknowledged.
    with ctx.db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbound_messages RENAME TO inbound_messages_away")
    with pytest.raises(smtplib.SMTPDataError) as failed:
        send(server, make_return_path(ctx.settings, 1), b"Subject: x\r\n\r\nhello\r\n")
    assert failed.value.smtp_code == 451
    with ctx.db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbound_messages_away RENAME TO inbound_messages")
        assert conn.execute(select(InboundMessage.id)).all() == []


def test_concurrent_sessions_are_stored_together_each_once_and_each_acted_on_once(
        ctx: AppContext, server: InboundServer) -> None:
    people = [add_applicant(ctx, account=f"smtp{i:04d}", email=f"user{i}@example.com") for i in range(12)]
    mails = [sent_mail(ctx, who) for who in people]
    bounces = [(make_return_path(ctx.settings, mail.id), dsn(ctx.settings, mail)) for mail in mails]
    # 24 sessions at once: each bounce twice (an MTA retrying), so half the sessions find it stored.
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda n: send_one(server, *bounces[n % len(bounces)]), range(24)))
    assert all(code == 250 for code, _ in answers)
    ids = [int(text.rsplit(b" ", 1)[1]) for _, text in answers]  # "250 ... stored as ID"
    assert ids[:12] == ids[12:] and len(set(ids)) == 12
    server.drain()
    with ctx.db.session() as session:
        rows = inbound_rows(session)
        assert sorted(r.id for r in rows) == sorted(set(ids))
        assert {r.status for r in rows} == {InboundStatus.PROCESSED}
        assert sorted(i.account_id or 0 for i in items(session)) == sorted(who.account_id for who in people)
        assert all(suppressed(session, who.email) for who in people)


def send_one(server: InboundServer, rcpt: str, raw: bytes) -> tuple[int, bytes]:
    """The answer to DATA."""
    with smtplib.SMTP(server.host, server.port, timeout=60) as smtp:
        smtp.ehlo()
        smtp.mail("MAILER-DAEMON@mx.example.net")
        smtp.rcpt(rcpt)
        return smtp.data(raw)
