"""變更 Email (issue 14): asked on /account with the password, confirmed from the new address's mail with the
password, like every /verify link. Until then nothing changes on the account, not even a bounce of the new
address; afterwards the old address is told, the older links and every session end."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.inbound.store import store_mail
from mailflow.mail import suppression
from mailflow.models import AuditEvent, Event, SupportItem, TokenPurpose
from tests.inbound.test_intake_helpers import dsn
from tests.selfservice.conftest import (
    NEW_PASSWORD,
    PASSWORD,
    account_row,
    csrf,
    holder,
    link_in,
    log_in,
    mails_to,
    open_tokens,
    outbox,
    shared_holder,
    signed_in,
)
from tests.test_story import Mailbox, text_of

NEW = "wang.new@harbour-logistics.com.tw"


def ask(client: TestClient, email: str = NEW, password: str = PASSWORD) -> int:
    return client.post("/api/account/email", json={"email": email, "password": password}).status_code


def test_the_address_changes_only_when_the_new_mailbox_confirms(ctx: AppContext, client: TestClient,
                                                                mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    other_device = TestClient(client.app)
    assert log_in(other_device) == 200
    assert log_in(client) == 200
    answer = client.post("/api/account/email", json={"email": NEW, "password": PASSWORD})
    masked = "w***@harbour-logistics.com.tw"
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted", "to": masked})
    [mail] = mails_to(mailbox.deliver(), NEW, "變更Email")
    assert str(mail["To"]) == NEW  # no display name: the new address is nobody's verified one yet
    assert "若不是您本人申請,請忽略此信" in text_of(mail).split("http")[0]
    before = account_row(ctx, account_id)
    assert (before.email, before.is_verified) == ("wang@example.com", True)  # the old address stays in use
    link = link_in(mail)
    assert link.startswith("/verify/")
    page = client.get(link)
    assert page.status_code == 200 and "確認變更 Email" in page.text and masked in page.text
    client.cookies.clear()
    done = client.post(link, data={"password": PASSWORD})
    assert done.status_code == 200 and "Email 變更完成" in done.text
    after = account_row(ctx, account_id)
    assert (after.email, after.email_key, after.is_verified) == (NEW, NEW, True)
    [told] = mails_to(mailbox.deliver(), "wang@example.com", "Email變更通知")
    assert masked in text_of(told) and NEW not in text_of(told)
    assert "若這不是您本人所做的變更" in text_of(told)
    assert not signed_in(other_device)  # every session ended
    assert client.post(link, data={"password": PASSWORD}).status_code == 410  # single use
    assert log_in(client) == 200  # the login follows the account; the next mails go to the new address
    with ctx.db.session() as session:
        [event] = session.scalars(select(Event).where(Event.type == "account.email_changed"))
        assert event.data == {"account": "wang1234", "by": "holder"}
        actions = [e.action for e in session.scalars(select(AuditEvent)
                                                     .where(AuditEvent.target_id == account_id))]
        assert {"email.change_requested", "email.changed"} <= set(actions)


def test_a_forwarded_link_needs_the_holders_password(ctx: AppContext, client: TestClient,
                                                     mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    assert log_in(client) == 200 and ask(client) == 202
    [mail] = mails_to(mailbox.deliver(), NEW, "變更Email")
    link = link_in(mail)
    client.cookies.clear()
    stranger = client.post(link, data={"password": "Guessing-2024"})
    assert stranger.status_code == 403 and "密碼錯誤" in stranger.text
    for _ in range(4):
        client.post(link, data={"password": "Guessing-2024"})
    assert client.post(link, data={"password": PASSWORD}).status_code == 410  # five wrong tries void it
    assert account_row(ctx, account_id).email == "wang@example.com"
    with ctx.db.session() as session:
        flagged = session.scalars(select(SupportItem).where(SupportItem.account_id == account_id)).first()
        assert flagged is not None  # customer service hears of the forwarded link


def test_the_request_is_refused_without_a_session_password_or_deliverable_address(
        ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    holder(ctx)
    assert ask(client) == 401
    assert log_in(client) == 200
    assert ask(client, password="Wrong-pass-2024") == 403
    bad = client.post("/api/account/email", json={"email": "王@example.com", "password": PASSWORD})
    assert bad.status_code == 422 and "email" in bad.json()["errors"]
    same = client.post("/api/account/email", json={"email": "WANG@example.com", "password": PASSWORD})
    assert same.status_code == 422
    with ctx.db.session() as session:
        suppression.suppress(session, NEW, "hard_bounce", "550 5.1.1")
    assert ask(client) == 409
    assert mailbox.deliver() == [] and outbox(ctx, "email-change") == []


def test_a_newer_request_voids_the_older_link(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    assert log_in(client) == 200
    assert ask(client, "first@example.com") == 202 and ask(client, "second@example.com") == 202
    mails = mailbox.deliver()
    first = link_in(mails_to(mails, "first@example.com")[0])
    second = link_in(mails_to(mails, "second@example.com")[0])
    assert open_tokens(ctx, account_id, TokenPurpose.EMAIL_CHANGE) == 1
    client.cookies.clear()
    assert client.post(first, data={"password": PASSWORD}).status_code == 410
    assert client.post(second, data={"password": PASSWORD}).status_code == 200
    assert account_row(ctx, account_id).email == "second@example.com"


def test_a_password_change_voids_a_pending_email_change(ctx: AppContext, client: TestClient,
                                                        mailbox: Mailbox) -> None:
    holder(ctx)
    assert log_in(client) == 200 and ask(client) == 202
    [mail] = mails_to(mailbox.deliver(), NEW, "變更Email")
    changed = client.post("/api/account/password",
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 200
    client.cookies.clear()
    assert client.post(link_in(mail), data={"password": NEW_PASSWORD}).status_code == 410


def test_a_bounce_of_the_new_address_changes_nothing_on_the_account(ctx: AppContext, client: TestClient,
                                                                    mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    assert log_in(client) == 200 and ask(client) == 202
    mailbox.deliver()
    [sent] = outbox(ctx, "email-change")
    stored = store_mail(ctx.db, dsn(ctx.settings, sent), "smtp", "test", "MAILER-DAEMON@mx.example.net", "")
    route.process(ctx, stored.id)
    after = account_row(ctx, account_id)
    assert (after.email, after.is_verified, after.email_undeliverable) == ("wang@example.com", True, False)
    with ctx.db.session() as session:
        assert suppression.active_suppression(session, NEW) is not None  # the new address is the one stopped
        assert suppression.active_suppression(session, "wang@example.com") is None
    assert signed_in(client)


def test_a_shared_account_changes_its_address_on_the_account_page(ctx: AppContext, client: TestClient,
                                                                  mailbox: Mailbox) -> None:
    account_id = shared_holder(ctx, "manager01", "chen@example.com")
    assert log_in(client, "manager01") == 200
    page = client.get("/account")
    assert "變更 Email" in page.text and "變更密碼" in page.text
    token = csrf(client, "/account")
    refused = client.post("/account/email", data={"email": NEW, "password": PASSWORD})
    assert refused.status_code == 403
    wrong = client.post("/account/email", data={"email": NEW, "password": "nope", "csrf_token": token})
    assert wrong.status_code == 403 and "目前的密碼不正確" in wrong.text
    sent = client.post("/account/email", data={"email": NEW, "password": PASSWORD, "csrf_token": token},
                       follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/account?done=email"
    assert "已寄出確認信到新的 Email" in client.get("/account?done=email").text
    [mail] = mails_to(mailbox.deliver(), NEW, "變更Email")
    assert client.post(link_in(mail), data={"password": PASSWORD}).status_code == 200
    assert account_row(ctx, account_id).email == NEW


def test_supports_correction_voids_a_pending_change_and_its_resend_is_refused(
        ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    from mailflow.support.actions import ActionError, correct_email, resend_mail

    account_id = holder(ctx)
    assert log_in(client) == 200 and ask(client) == 202
    [mail] = mails_to(mailbox.deliver(), NEW, "變更Email")
    [sent] = outbox(ctx, "email-change")
    with ctx.db.session() as session:
        try:
            resend_mail(session, ctx.settings, sent.id, "huang")
        except ActionError as refused:
            assert refused.status == 409 and "無法由客服重寄" in refused.message
        else:
            raise AssertionError("an email-change mail was sent again by support")
    with ctx.db.session() as session:  # the holder phoned: customer service puts in another address
        correct_email(session, ctx.settings, account_id, "wang.phone@example.com", "huang")
    client.cookies.clear()
    assert client.post(link_in(mail), data={"password": PASSWORD}).status_code == 410
    assert account_row(ctx, account_id).email == "wang.phone@example.com"
