"""忘記密碼 end to end (issue 14): the request through the real app, the mail through dispatch and the capture
server, the link from the mail, the new password, the login. Whatever is asked, the answer is the same;
the link is bound to its account, purpose and address, single use, and dies by a newer link, a login, a
change of password or Email, or when it is opened in another account's session."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from mailflow.accounts.selfservice import ACCEPTED, RESET_TTL
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import AccountStatus, AuditEvent, VerificationToken
from mailflow.timeutil import now
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

SUBJECT = "重設密碼"


def ask(client: TestClient, **body: str) -> None:
    answer = client.post("/api/password-resets", json=body)
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})


def set_new(client: TestClient, link: str, password: str = NEW_PASSWORD) -> Response:
    return client.post(link, data={"password": password, "password_confirm": password})


def reset_link(client: TestClient, mailbox: Mailbox, address: str = "wang@example.com", **body: str) -> str:
    ask(client, **(body or {"account": "wang1234"}))
    [mail] = mails_to(mailbox.deliver(), address, SUBJECT)
    return link_in(mail)


def test_a_forgotten_password_is_reset_by_the_mailed_link(ctx: AppContext, client: TestClient,
                                                         mailbox: Mailbox) -> None:
    holder(ctx)
    assert log_in(client) == 200
    client.cookies.clear()
    ask(client, account="WANG1234")  # the 帳號 as typed, any case
    [mail] = mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)
    text = text_of(mail).replace("\r\n", "\n")
    first = text.split("\n\n")[1]  # what happened and what to do if it was not the holder, first
    assert "重設您的通行證系統帳號 wang1234 密碼" in first and "若不是您本人申請,請忽略此信" in first
    link = link_in(mail)
    assert link.startswith("/password/reset/")
    for _ in range(2):  # opening the link (a mail scanner, the holder) never uses it
        page = client.get(link)
        assert page.status_code == 200 and "設定新密碼" in page.text and "wang1234" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    weak = client.post(link, data={"password": "short", "password_confirm": "short"})
    assert weak.status_code == 422 and "密碼至少8個字元" in weak.text
    different = client.post(link, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD + "x"})
    assert different.status_code == 422 and "兩次輸入的密碼不一致" in different.text
    done = set_new(client, link)
    assert done.status_code == 200 and "密碼已變更" in done.text
    assert set_new(client, link).status_code == 410
    assert client.get(link).status_code == 410
    [changed] = mails_to(mailbox.deliver(), "wang@example.com", "密碼變更通知")
    assert "經由重設密碼連結變更" in text_of(changed) and "若這不是您本人所做的變更" in text_of(changed)
    assert log_in(client, password=PASSWORD) == 401
    assert log_in(client, password=NEW_PASSWORD) == 200


def test_the_address_gets_one_link_per_account_it_verified(ctx: AppContext, client: TestClient,
                                                           mailbox: Mailbox) -> None:
    holder(ctx, "wang1234", "wang@example.com")
    holder(ctx, "wang5678", "Wang@Example.com", ubn="12345675", company="高雄港埠物流股份有限公司")
    shared_holder(ctx, "manager01", "wang@example.com")
    holder(ctx, "other999", "other@example.com", ubn="22099131")
    ask(client, email="ＷＡＮＧ@example.com")  # typed in full-width, any case
    mails = mails_to(mailbox.deliver(), "example.com", SUBJECT)
    assert sorted(m["To"].addresses[0].addr_spec.lower() for m in mails) == ["wang@example.com"] * 3
    assert sorted(text_of(m).split("帳號 ")[1].split(" ")[0] for m in mails) == [
        "manager01", "wang1234", "wang5678"]


@pytest.mark.parametrize("who", ["unknown", "pending", "unverified", "rejected", "suspended", "suppressed"])
def test_nobody_learns_whether_an_account_exists(ctx: AppContext, client: TestClient, mailbox: Mailbox,
                                                 who: str) -> None:
    if who == "pending":
        holder(ctx, verified=False, status=AccountStatus.PENDING)
    elif who == "unverified":
        holder(ctx, verified=False)
    elif who in ("rejected", "suspended"):
        holder(ctx, status=who)
    elif who == "suppressed":
        holder(ctx)
        with ctx.db.session() as session:
            suppression.suppress(session, "wang@example.com", "hard_bounce", "550 5.1.1")
    known = client.post("/api/password-resets", json={"account": "wang1234"})
    by_address = client.post("/api/password-resets", json={"email": "wang@example.com"})
    for answer in (known, by_address):
        assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
        assert answer.headers.get("set-cookie") is None
    assert mailbox.deliver() == []  # nothing reached any mailbox
    # support sees the tries that could not be sent, on the account's page
    expected = ["suppressed"] * 2 if who == "suppressed" else []
    assert [m.status for m in outbox(ctx, "password-reset")] == expected


def test_the_form_gives_the_same_answer_and_needs_its_csrf_token(ctx: AppContext, client: TestClient,
                                                                 mailbox: Mailbox) -> None:
    holder(ctx)
    assert "忘記帳號" in client.get("/password/forgot").text
    refused = client.post("/password/forgot", data={"account": "wang1234"})
    assert refused.status_code == 403 and mailbox.deliver() == []
    token = csrf(client, "/password/forgot")
    pages = [client.post("/password/forgot", data={"account": typed, "csrf_token": token})
             for typed in ("wang1234", "nobody99", "nobody@example.com")]
    assert [p.status_code for p in pages] == [202, 202, 202]
    assert all(ACCEPTED in p.text for p in pages)
    assert len({p.text.replace(token, "") for p in pages}) == 1  # word for word the same page
    assert len(mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)) == 1
    empty = client.post("/password/forgot", data={"account": " ", "csrf_token": token})
    assert empty.status_code == 422
    assert client.post("/api/password-resets", json={}).status_code == 422


def test_a_newer_link_voids_the_older_one(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    older = reset_link(client, mailbox)
    newer = reset_link(client, mailbox)
    assert client.get(older).status_code == 410
    # dead is dead before anything is said about the new password: no 422 from an old link
    assert [set_new(client, older, p).status_code for p in ("x", NEW_PASSWORD)] == [410, 410]
    assert open_tokens(ctx, account_id) == 1
    assert set_new(client, newer).status_code == 200


def test_a_login_voids_the_link(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    link = reset_link(client, mailbox) if holder(ctx) else ""
    assert log_in(client) == 200  # the holder remembered the password after all
    client.cookies.clear()
    answer = set_new(client, link)
    assert answer.status_code == 410 and "已失效" in answer.text
    assert log_in(client) == 200  # the password did not change


def test_a_link_opened_in_another_accounts_session_is_refused(ctx: AppContext, client: TestClient,
                                                              mailbox: Mailbox) -> None:
    holder(ctx)
    holder(ctx, "chen5678", "chen@example.com", ubn="12345675")
    link = reset_link(client, mailbox)
    assert log_in(client, "chen5678") == 200
    page = client.get(link)
    assert page.status_code == 410 and "不屬於目前登入的帳號" in page.text
    # a wrong, weak or right new password: the same 410, nothing said about it, the password unchanged
    for password in ("x", NEW_PASSWORD):
        answer = set_new(client, link, password)
        assert answer.status_code == 410 and "密碼至少" not in answer.text
    client.cookies.clear()
    assert client.get(link).status_code == 410  # refused in that session, the link died
    assert log_in(client) == 200


def test_an_email_change_voids_the_link(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    assert log_in(client) == 200
    asked = client.post("/api/account/email", json={"email": "wang.new@example.com", "password": PASSWORD})
    assert asked.status_code == 202
    [change] = mails_to(mailbox.deliver(), "wang.new@example.com", "變更Email")
    client.cookies.clear()
    link = reset_link(client, mailbox)  # asked after the change was asked for, before it was confirmed
    assert client.get(link).status_code == 200
    assert client.post(link_in(change), data={"password": PASSWORD}).status_code == 200
    assert account_row(ctx, account_id).email == "wang.new@example.com"
    answer = set_new(client, link)
    assert answer.status_code == 410


def test_an_expired_link_is_410_and_it_lives_one_hour(ctx: AppContext, client: TestClient,
                                                      mailbox: Mailbox) -> None:
    account_id = holder(ctx)
    link = reset_link(client, mailbox)
    with ctx.db.session() as session:
        row = session.scalars(select(VerificationToken)
                              .where(VerificationToken.account_id == account_id)).one()
        assert row.expires_at - row.issued_at == RESET_TTL
        session.execute(update(VerificationToken).values(expires_at=now() - timedelta(seconds=1)))
    assert client.get(link).status_code == 410
    assert set_new(client, link).status_code == 410


def test_a_link_works_only_for_its_purpose(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    holder(ctx)
    link = reset_link(client, mailbox)
    token = link.rsplit("/", 1)[1]
    assert client.get(f"/verify/{token}").status_code == 400
    assert client.post(f"/verify/{token}", data={"password": PASSWORD}).status_code == 400
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/password/reset/{tampered}").status_code == 400
    unverified = holder(ctx, "chen5678", "chen@example.com", ubn="12345675", verified=False)
    from mailflow.accounts.verification import send_verification_mail
    from mailflow.models import Account

    with ctx.db.session() as session:
        account = session.get(Account, unverified)
        assert account is not None
        verify = urlsplit(str(send_verification_mail(session, ctx.settings, account, "account-approved")
                              .context["verify_url"])).path
    verify_token = verify.rsplit("/", 1)[1]
    assert client.get(f"/password/reset/{verify_token}").status_code == 400
    assert client.post(f"/password/reset/{verify_token}",
                       data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code == 400
    assert client.get(link).status_code == 200  # still usable: nothing above touched it


def test_every_session_ends_when_the_password_is_reset(ctx: AppContext, client: TestClient,
                                                       mailbox: Mailbox) -> None:
    holder(ctx)
    other_device = TestClient(client.app)
    assert log_in(other_device) == 200 and signed_in(other_device)
    link = reset_link(client, mailbox)
    assert set_new(client, link).status_code == 200
    assert not signed_in(other_device)


def test_a_shared_account_resets_its_password_too(ctx: AppContext, client: TestClient,
                                                  mailbox: Mailbox) -> None:
    shared_holder(ctx, "manager01", "chen@example.com")
    link = reset_link(client, mailbox, "chen@example.com", account="manager01")
    assert set_new(client, link).status_code == 200
    assert log_in(client, "manager01", NEW_PASSWORD) == 200


def test_support_sees_the_reset_on_the_trail_and_may_send_it_again(ctx: AppContext, client: TestClient,
                                                                    mailbox: Mailbox) -> None:
    from mailflow.support.actions import resend_mail
    from tests.factories import make_staff, sign_in

    account_id = holder(ctx)
    older = reset_link(client, mailbox)
    with ctx.db.session() as session:
        staff = make_staff(session, "huang", "support")
        session.expunge(staff)
    sign_in(client, ctx.settings, staff)
    page = client.get(f"/support/accounts/{account_id}")
    assert page.status_code == 200 and "寄出重設密碼信" in page.text and "重設密碼通知信件" in page.text
    [sent] = outbox(ctx, "password-reset")
    with ctx.db.session() as session:
        copy = resend_mail(session, ctx.settings, sent.id, "huang")
        assert copy.template == "password-reset" and copy.id != sent.id
    client.cookies.clear()
    [again] = mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)
    assert client.get(older).status_code == 410 and client.get(link_in(again)).status_code == 200
    with ctx.db.session() as session:
        actors = {e.actor for e in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "password.reset_requested"))}
    assert actors == {"system", "staff:huang"}
    assert all(m.context.get("reset_url") is None for m in outbox(ctx, "password-reset")
               if m.status == "sent")  # the raw link is not kept once the mail went out
