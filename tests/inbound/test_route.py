"""What a received mail changes: bounces, complaints, auto-replies and replies routed to the applicant."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.inbound import consequences, route
from mailflow.inbound.quoted import strip_quoted
from mailflow.inbound.store import store_mail
from mailflow.mail.returnpath import make_return_path
from mailflow.mail.suppression import record_delivery
from mailflow.models import (
    Account,
    AuditEvent,
    BounceRecipient,
    InboundMessage,
    InboundStatus,
    OutboxEvent,
    OutboxMessage,
    OutboxStatus,
    SupportKind,
    SupportNote,
)
from tests.factories import add_applicant
from tests.inbound.test_intake_helpers import (
    autoreply,
    complaint,
    dsn,
    inbound_rows,
    items,
    reply,
    sent_mail,
    suppressed,
)


def receive(ctx: AppContext, raw: bytes, envelope_to: str = "") -> InboundMessage:
    stored = store_mail(ctx.db, raw, "smtp", "test", "MAILER-DAEMON@mx.example.net", envelope_to)
    route.process(ctx, stored.id)
    with ctx.db.session() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        return row


def test_hard_bounce_suppresses_flags_the_applicant_and_opens_an_item(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    waiting = sent_mail(ctx, who, "document-approved", sent=False)
    row = receive(ctx, dsn(ctx.settings, mail))
    assert (row.status, row.kind, row.forged) == (InboundStatus.PROCESSED, "bounce", False)
    assert (row.outbox_id, row.account_id) == (mail.id, who.account_id)
    with ctx.db.session() as session:
        assert suppressed(session, who.email)
        account = session.get(Account, who.account_id)
        assert account is not None and account.email_undeliverable
        queued = session.get(OutboxMessage, waiting.id)
        assert queued is not None and queued.status == OutboxStatus.SUPPRESSED
        event = session.execute(select(OutboxEvent).where(OutboxEvent.outbox_id == waiting.id)
                                .order_by(OutboxEvent.id.desc())).scalars().first()
        assert event is not None and event.to_status == OutboxStatus.SUPPRESSED
        [item] = items(session)
        assert (item.kind, item.address, item.reason) == (SupportKind.HARD_BOUNCE, who.email, "userunknown")
        assert (item.outbox_id, item.account_id, item.application_id, item.inbound_id) == (
            mail.id, who.account_id, who.application_id, row.id)
        assert "User unknown" in item.diagnostic
        [recipient] = session.execute(select(BounceRecipient)).scalars().all()
        assert (recipient.address, recipient.hard, recipient.status, recipient.outbox_id) == (
            who.email, True, "5.1.1", mail.id)
        actions = {e.action for e in session.execute(select(AuditEvent)).scalars() if e.actor == "system"}
        assert {"address_suppressed", "email_undeliverable", "support_item_opened"} <= actions


def test_processing_twice_changes_nothing_more(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, dsn(ctx.settings, mail))
    assert route.process(ctx, row.id) == InboundStatus.PROCESSED
    again = receive(ctx, dsn(ctx.settings, mail))  # the same bounce delivered a second time
    with ctx.db.session() as session:
        assert len(items(session)) == 1
        assert again.id != row.id


def test_correlation_by_message_id_when_no_tag(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    sent_mail(ctx, who, "document-approved")  # later mail to the same address: must not be chosen
    raw = dsn(ctx.settings, mail, to="hep@twport.com.tw", return_path="hep@twport.com.tw")
    row = receive(ctx, raw)
    assert row.outbox_id == mail.id


def test_correlation_by_address_and_time_as_last_resort(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    sent_mail(ctx, who)
    latest = sent_mail(ctx, who, "document-approved")
    sent_mail(ctx, who, "verify-reminder", sent=False)  # not sent yet: cannot have bounced
    stranger = OutboxMessage(id=10**9, to_address=who.email, message_id="<unknown@elsewhere.example>")
    row = receive(ctx, dsn(ctx.settings, stranger, to="hep@twport.com.tw", return_path="x@elsewhere.example"))
    assert row.outbox_id == latest.id
    # Linked for customer service, but an address proves nothing: anyone could have written this.
    with ctx.db.session() as session:
        assert not suppressed(session, who.email)
        account = session.get(Account, who.account_id)
        assert account is not None and not account.email_undeliverable
        [item] = items(session)
        assert (item.kind, item.account_id, item.outbox_id) == (SupportKind.HARD_BOUNCE, who.account_id,
                                                                latest.id)
        assert consequences.UNPROVEN_NOTE in item.diagnostic and "5.1.1" in item.diagnostic


def test_an_untagged_bounce_naming_an_applicant_cannot_stop_her_mail(ctx: AppContext) -> None:
    """The attack: a DSN with no tag and no Message-ID of ours, only the victim's address, sent to our
    public address or to the bounce domain. It must not suppress the address, flag the account, or count
    towards the soft-bounce limit; the next mail to her is sent."""
    who = add_applicant(ctx)
    sent_mail(ctx, who)
    fake = OutboxMessage(id=10**9, to_address=who.email, message_id="<made-up@attacker.example>")
    for to in ("hep@twport.com.tw", f"bounce@{ctx.settings.mail.bounce_domain}"):
        receive(ctx, dsn(ctx.settings, fake, to=to, return_path="x@attacker.example"))
        for _ in range(6):
            receive(ctx, dsn(ctx.settings, fake, to=to, return_path="x@attacker.example", status="4.2.2",
                             diagnostic="smtp; 452 4.2.2 Mailbox full"))
    tag = make_return_path(ctx.settings, fake.id).encode()
    receive(ctx, complaint(ctx.settings, fake).replace(tag, b"hep@twport.com.tw"))
    with ctx.db.session() as session:
        assert not suppressed(session, who.email)
        account = session.get(Account, who.account_id)
        assert account is not None and not account.email_undeliverable
        unproven = session.scalars(select(AuditEvent).where(AuditEvent.action == "report_unproven")).all()
        assert len(unproven) == 2 * 7 + 1


def test_forged_tag_is_recorded_and_changes_nothing(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    forged = f"bounce+{mail.id}-aaaaaaaaaaaaaaaa@{ctx.settings.mail.bounce_domain}"
    row = receive(ctx, dsn(ctx.settings, mail, return_path=forged), envelope_to=forged)
    assert row.forged and row.status == InboundStatus.PROCESSED
    with ctx.db.session() as session:
        assert not suppressed(session, who.email)
        assert items(session) == []
        account = session.get(Account, who.account_id)
        assert account is not None and not account.email_undeliverable


def test_bounce_for_a_mail_we_never_sent_changes_nothing(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    stranger = OutboxMessage(id=10**9, to_address="nobody@example.org", message_id="<n@elsewhere.example>")
    row = receive(ctx, dsn(ctx.settings, stranger, to="hep@twport.com.tw", return_path="x@elsewhere.example"))
    assert row.status == InboundStatus.PROCESSED and row.outbox_id is None
    with ctx.db.session() as session:
        assert not suppressed(session, "nobody@example.org") and items(session) == []
        assert session.execute(select(BounceRecipient.address)).scalars().all() == ["nobody@example.org"]
        assert who.email


def soft(ctx: AppContext, mail: OutboxMessage) -> None:
    receive(ctx, dsn(ctx.settings, mail, status="4.2.2", diagnostic="smtp; 452 4.2.2 Mailbox full"))


def test_five_soft_bounces_in_a_row_count_as_hard_and_a_delivery_resets(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    for _ in range(4):
        soft(ctx, mail)
    with ctx.db.session() as session:
        record_delivery(session, who.email)
    for _ in range(4):
        soft(ctx, mail)
    with ctx.db.session() as session:
        assert not suppressed(session, who.email) and items(session) == []
    soft(ctx, mail)
    with ctx.db.session() as session:
        assert suppressed(session, who.email)
        [item] = items(session)
        assert item.kind == SupportKind.SOFT_BOUNCES and item.reason == "mailboxfull"
        account = session.get(Account, who.account_id)
        assert account is not None and account.email_undeliverable


def test_delay_notice_is_recorded_but_not_counted(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    for _ in range(6):
        receive(ctx, dsn(ctx.settings, mail, status="4.4.7", action="delayed",
                         diagnostic="smtp; 421 4.4.7 try again later"))
    with ctx.db.session() as session:
        assert not suppressed(session, who.email)
        assert len(session.execute(select(BounceRecipient)).scalars().all()) == 6


def test_complaint_suppresses_and_opens_an_item(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, complaint(ctx.settings, mail))
    assert row.kind == "complaint" and row.outbox_id == mail.id
    with ctx.db.session() as session:
        assert suppressed(session, who.email)
        [item] = items(session)
        assert (item.kind, item.account_id, item.reason) == (SupportKind.COMPLAINT, who.account_id, "abuse")
        account = session.get(Account, who.account_id)
        assert account is not None and not account.email_undeliverable


def test_autoreply_is_recorded_on_the_mail_and_shown_to_support_at_low_priority(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, autoreply(mail))
    receive(ctx, autoreply(mail))  # a second one goes on the same item
    assert row.kind == "autoreply" and row.outbox_id == mail.id
    with ctx.db.session() as session:
        outbox = session.get(OutboxMessage, mail.id)
        assert outbox is not None and outbox.autoreply_seen
        [item] = items(session)
        assert (item.kind, item.account_id) == ("autoreply", who.account_id)
        assert not suppressed(session, who.email)


def test_autoreply_without_references_matches_the_latest_mail_to_its_sender(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    raw = autoreply(mail).replace(f"In-Reply-To: {mail.message_id}\r\n".encode(), b"")
    row = receive(ctx, raw)
    assert row.outbox_id == mail.id


REPLY_TEXT = """請問我的帳號什麼時候可以登入?
謝謝

On Tue, 25 Nov 2026 at 10:00, 港區通行證通用管理系統工作小組 <hep@twport.com.tw> wrote:
> 感謝您註冊通行證系統
> 此mail為系統發送通知,請勿回覆
"""


def test_reply_opens_an_item_with_the_quoted_history_stripped(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, "registration-received")
    row = receive(ctx, reply(who.email, REPLY_TEXT, in_reply_to=mail.message_id))
    assert row.kind == "reply" and row.outbox_id == mail.id and row.account_id == who.account_id
    assert row.summary is not None and "感謝您註冊" in row.summary  # the full text is kept
    with ctx.db.session() as session:
        [item] = items(session)
        assert item.kind == SupportKind.REPLY
        assert item.summary == "請問我的帳號什麼時候可以登入?\n謝謝"
        assert (item.account_id, item.application_id, item.outbox_id) == (who.account_id, who.application_id,
                                                                          mail.id)


def test_second_reply_goes_on_the_open_item_as_a_note(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, "registration-received")
    receive(ctx, reply(who.email, "第一封", in_reply_to=mail.message_id))
    receive(ctx, reply(who.email, "第二封", in_reply_to=mail.message_id))
    with ctx.db.session() as session:
        [item] = items(session)
        query = select(SupportNote.text).where(SupportNote.item_id == item.id)
        notes = session.execute(query).scalars().all()
        # Neither reply is signed: the note says its sender is not proven, like the item does.
        assert item.summary == "第一封" and notes == ["[寄件者未經驗證] 第二封"]
        assert item.sender_auth == "none"


def test_reply_without_references_is_linked_by_the_sender_address(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    row = receive(ctx, reply(who.email.upper(), "我的公司文件要重傳嗎?"))
    assert row.account_id == who.account_id
    with ctx.db.session() as session:
        [item] = items(session)
        assert (item.kind, item.account_id, item.application_id) == (SupportKind.REPLY, who.account_id,
                                                                     who.application_id)


@pytest.mark.parametrize("template", ["account-approved", "verify-reminder"])
def test_reply_to_a_verification_mail_from_another_address_is_a_forwarded_verification(
        ctx: AppContext, template: str) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, template)
    receive(ctx, reply("colleague@other.example", "請幫我驗證", in_reply_to=mail.message_id))
    with ctx.db.session() as session:
        [item] = items(session)
        assert item.kind == SupportKind.FORWARDED_VERIFICATION
        assert (item.account_id, item.address) == (who.account_id, "colleague@other.example")


def test_reply_to_a_verification_mail_from_the_same_address_is_a_plain_reply(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who, "account-approved")
    receive(ctx, reply(who.email, "連結打不開", in_reply_to=mail.message_id))
    with ctx.db.session() as session:
        assert [i.kind for i in items(session)] == [SupportKind.REPLY]


def test_a_failure_while_acting_quarantines_with_the_reason_and_changes_nothing(
        ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)

    def half_done(session: Any, row: Any, analysis: Any, tagged: Any) -> None:
        consequences.undeliverable(session, row, tagged, analysis.recipients[0], SupportKind.HARD_BOUNCE)
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(consequences.HANDLERS, "bounce", half_done)
    row = receive(ctx, dsn(ctx.settings, mail))
    assert row.status == InboundStatus.QUARANTINED
    assert row.quarantine_reason is not None and "disk on fire" in row.quarantine_reason
    with ctx.db.session() as session:
        assert not suppressed(session, who.email) and items(session) == []


def test_process_of_an_unknown_id_does_not_raise(ctx: AppContext) -> None:
    assert route.process(ctx, 424242) == InboundStatus.QUARANTINED
    with ctx.db.session() as session:
        assert inbound_rows(session) == []


def test_process_pending_finishes_mails_left_stored(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    stored = store_mail(ctx.db, dsn(ctx.settings, mail), "smtp", "crash")
    assert route.process_pending(ctx) == 1
    with ctx.db.session() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None and row.status == InboundStatus.PROCESSED
    assert route.process_pending(ctx) == 0


def test_tag_wins_over_a_quoted_message_id_of_another_mail(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    first = sent_mail(ctx, who)
    second = sent_mail(ctx, who, "document-approved")
    raw = dsn(ctx.settings, first, to=make_return_path(ctx.settings, second.id))
    row = receive(ctx, raw)
    assert row.outbox_id == second.id


@pytest.mark.parametrize(("text", "expected"), [
    ("好的\n\nOn Mon, Jan 5, 2026 at 9:00 AM Someone <a@b.example>\nwrote:\n> old", "好的"),
    ("收到\n\n於 2026年1月5日 週一 上午9:00,港區通行證 <hep@twport.com.tw> 寫道:\n> 舊的", "收到"),
    ("OK\n\n-----Original Message-----\nFrom: hep@twport.com.tw\nSent: Monday\n舊的", "OK"),
    ("謝謝\n________________________________\n寄件者: hep@twport.com.tw\n主旨: 通知\n舊的", "謝謝"),
    ("Thanks\n\nFrom: hep@twport.com.tw\nSent: Monday\nTo: me\nSubject: x\n\nold", "Thanks"),
    ("line one\n> quoted\nline two", "line one\nline two"),
    ("From: here I start my story\nand go on", "From: here I start my story\nand go on"),
])
def test_strip_quoted(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected
