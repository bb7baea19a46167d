"""/verify/{token}, the new-mail request, the verify-reminder job and the POST /api/session login gate,
against the real app and database. The link is read from the queued mail, as the applicant would."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.accounts import reminders
from mailflow.accounts.login import MSG_PENDING, MSG_REJECTED, MSG_UNVERIFIED
from mailflow.accounts.verification import send_verification_mail
from mailflow.context import AppContext
from mailflow.models import Account, AccountStatus, OutboxMessage, SupportItem, VerificationToken
from mailflow.passwords import hash_password
from mailflow.timeutil import now
from tests.factories import PASSWORD, add_account


def mail_link(ctx: AppContext, account_id: int, template: str = "account-approved") -> str:
    """Queue a verification mail and return the path of its link."""
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        message = send_verification_mail(session, ctx.settings, account, template)
        return urlsplit(str(message.context["verify_url"])).path


def latest_link(ctx: AppContext, account_id: int) -> str:
    with ctx.db.session() as session:
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.account_id == account_id)
                                  .order_by(OutboxMessage.id.desc())).first()
        assert message is not None
        return urlsplit(str(message.context["verify_url"])).path


def verified(ctx: AppContext, account_id: int) -> bool:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.is_verified


def outbox_count(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count(OutboxMessage.id))) or 0


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


# --- /verify/{token} -------------------------------------------------------------------------------


def test_get_names_the_account_and_never_consumes(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    for _ in range(3):
        page = client.get(link)
        assert page.status_code == 200
        assert "example1234" in page.text and 'name="password"' in page.text
        assert page.headers["cache-control"] == "no-store"
    assert client.post(link, data={"password": PASSWORD}).status_code == 200
    assert verified(ctx, account_id)


def test_a_plain_form_post_without_the_csrf_cookie_completes(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    client.cookies.clear()
    assert client.post(link, data={"password": PASSWORD}).status_code == 200
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.email_verified_address == "example@gmail.com"


def test_tampered_tokens_are_400_on_get_and_post(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    tampered = link[:-3] + ("xyz" if not link.endswith("xyz") else "abc")
    for path in (tampered, "/verify/garbage", "/verify/a.b"):
        assert client.get(path).status_code == 400
        answer = client.post(path, data={"password": PASSWORD})
        assert answer.status_code == 400 and "重新寄送驗證信" in answer.text
    assert not verified(ctx, account_id)


def test_expired_replayed_and_voided_tokens_are_410(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    expired = mail_link(ctx, account_id)
    with ctx.db.session() as session:
        for row in session.scalars(select(VerificationToken)):
            row.expires_at = now() - timedelta(minutes=1)
    assert client.get(expired).status_code == 410
    assert client.post(expired, data={"password": PASSWORD}).status_code == 410

    voided = mail_link(ctx, account_id)
    fresh = mail_link(ctx, account_id)  # a newer mail voids the older link
    assert client.post(voided, data={"password": PASSWORD}).status_code == 410
    assert not verified(ctx, account_id)
    assert client.post(fresh, data={"password": PASSWORD}).status_code == 200
    replayed = client.post(fresh, data={"password": PASSWORD})
    assert replayed.status_code == 410 and "已使用過" in replayed.text


def test_a_forwarded_mail_is_useless_without_the_password(ctx: AppContext, client: TestClient) -> None:
    holder = add_account(ctx)
    add_account(ctx, "colleague99", "colleague@example.org")
    link = mail_link(ctx, holder)
    # The colleague who received the forwarded mail tries nothing, their own password, a guess.
    for password in ("", PASSWORD + "x", "colleague-password"):
        answer = client.post(link, data={"password": password})
        assert answer.status_code == 403, password
        assert "客服" in answer.text
    assert not verified(ctx, holder)
    assert client.post(link, data={"password": PASSWORD}).status_code == 200


def test_another_accounts_password_does_not_verify_this_account(ctx: AppContext, client: TestClient) -> None:
    first = add_account(ctx)
    second = add_account(ctx, "other5678", "other@example.com")
    with ctx.db.session() as session:
        other = session.get(Account, second)
        assert other is not None
        other.password_hash = hash_password("Other-pass-77")
    link = mail_link(ctx, first)
    assert client.post(link, data={"password": "Other-pass-77"}).status_code == 403
    assert not verified(ctx, first) and not verified(ctx, second)


def test_five_wrong_passwords_void_the_link_and_queue_nothing(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    queued = outbox_count(ctx)
    answers = [client.post(link, data={"password": f"guess-{n}"}) for n in range(5)]
    assert [a.status_code for a in answers] == [403] * 5
    assert "此連結已失效" in answers[-1].text
    assert client.post(link, data={"password": PASSWORD}).status_code == 410
    assert not verified(ctx, account_id)
    assert outbox_count(ctx) == queued
    with ctx.db.session() as session:
        assert session.scalar(select(VerificationToken.voided_at)) is not None


def test_a_link_sent_before_the_address_changed_is_409(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        account.email, account.email_key = "New@Example.com", "new@example.com"
    answer = client.post(link, data={"password": PASSWORD})
    assert answer.status_code == 409 and "重新寄送驗證信" in answer.text
    assert not verified(ctx, account_id)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(SupportItem.id))) == 1  # 客服 sees the mismatch
    new_link = mail_link(ctx, account_id)
    assert client.post(new_link, data={"password": PASSWORD}).status_code == 200
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.email_verified_address == "New@Example.com"


def test_an_address_differing_only_in_case_still_verifies(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx, email="Example@Gmail.com")
    link = mail_link(ctx, account_id)
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        account.email = "example@gmail.com"
    assert client.post(link, data={"password": PASSWORD}).status_code == 200


# --- a new verification mail -----------------------------------------------------------------------


def test_a_new_mail_voids_the_old_link_max_three_an_hour(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    old = mail_link(ctx, account_id)
    for _ in range(3):
        answer = client.post("/api/verification-mails", json={"account": "EXAMPLE1234", "password": PASSWORD})
        assert answer.status_code == 202 and answer.json()["to"] == "e***@gmail.com"
    assert client.post(old, data={"password": PASSWORD}).status_code == 410
    fourth = client.post("/api/verification-mails", json={"account": "example1234", "password": PASSWORD})
    assert fourth.status_code == 429
    with ctx.db.session() as session:
        templates = session.scalars(select(OutboxMessage.template).order_by(OutboxMessage.id)).all()
    assert templates == ["account-approved"] + ["verify-reminder"] * 3
    assert client.post(latest_link(ctx, account_id), data={"password": PASSWORD}).status_code == 200
    again = client.post("/api/verification-mails", json={"account": "example1234", "password": PASSWORD})
    assert again.status_code == 409


def test_the_resend_form(ctx: AppContext, client: TestClient) -> None:
    add_account(ctx)
    add_account(ctx, "waiting01", "waiting@example.com", AccountStatus.PENDING)
    no_token = client.post("/verify/resend", data={"account": "example1234", "password": PASSWORD})
    assert no_token.status_code == 403
    cases = [("example1234", "wrong-password", 401), ("waiting01", PASSWORD, 403),
             ("example1234", PASSWORD, 200)]
    for account, password, status in cases:
        answer = client.post("/verify/resend", data={"account": account, "password": password,
                                                     "csrf_token": csrf(client, "/verify/resend")})
        assert answer.status_code == status, (account, answer.text)
    assert "已重新寄出驗證信至 e***@gmail.com" in answer.text
    assert client.post("/api/verification-mails", content=b"not json").status_code == 415  # no JSON type
    assert client.post("/api/verification-mails", content=b"not json",
                       headers={"content-type": "application/json"}).status_code == 422


# --- the reminder job ------------------------------------------------------------------------------


def test_one_reminder_three_days_after_approval_fresh_link(ctx: AppContext, client: TestClient) -> None:
    due = add_account(ctx)
    recent = add_account(ctx, "recent01", "recent@example.com")
    done = add_account(ctx, "done0001", "done@example.com")
    first_link = mail_link(ctx, due)
    assert client.post(mail_link(ctx, done), data={"password": PASSWORD}).status_code == 200
    with ctx.db.session() as session:
        for account in session.scalars(select(Account).where(Account.id.in_([due, done]))):
            account.approved_at = now() - timedelta(days=3, minutes=1)
        recent_account = session.get(Account, recent)
        assert recent_account is not None
        recent_account.approved_at = now() - timedelta(days=2)
    assert reminders.run(ctx) == 1
    assert reminders.run(ctx) == 0
    with ctx.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == "verify-reminder")
        reminder = session.scalars(query).one()
        assert reminder.account_id == due
    assert client.post(first_link, data={"password": PASSWORD}).status_code == 410
    assert client.post(latest_link(ctx, due), data={"password": PASSWORD}).status_code == 200


# --- the login gate --------------------------------------------------------------------------------


def login(client: TestClient, account: str = "example1234", password: str = PASSWORD):
    return client.post("/api/session", json={"account": account, "password": password})


def test_login_answers_for_each_state(ctx: AppContext, client: TestClient) -> None:
    add_account(ctx, "waiting01", "waiting@example.com", AccountStatus.PENDING)
    approved = add_account(ctx)
    assert login(client, "waiting01").json() == {"error": MSG_PENDING}
    assert login(client).json() == {"error": MSG_UNVERIFIED}
    assert login(client, password="wrong").status_code == 401
    assert login(client, "nobody").status_code == 401
    client.post(mail_link(ctx, approved), data={"password": PASSWORD})
    answer = login(client, "Example1234")
    assert answer.status_code == 200 and answer.json()["kind"] == "general"
    with ctx.db.session() as session:
        account = session.get(Account, approved)
        assert account is not None
        account.status, account.account_key = AccountStatus.REJECTED, None
    rejected = login(client)
    assert rejected.status_code == 403 and rejected.json() == {"error": MSG_REJECTED}


def test_login_refuses_bodies_that_are_not_the_contract(ctx: AppContext, client: TestClient) -> None:
    for body in (b"", b"[]", b'{"account": 1, "password": "x"}', b"\xff\xfe"):
        answer = client.post("/api/session", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and "error" in answer.json()


def test_repeated_failures_throttle_even_the_right_password(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    client.post(mail_link(ctx, account_id), data={"password": PASSWORD})
    assert [login(client, password=f"guess-{n}").status_code for n in range(10)] == [401] * 10
    throttled = login(client)
    assert throttled.status_code == 429 and "error" in throttled.json()


def test_a_wrong_password_shows_the_form_again_with_the_reason(ctx: AppContext, client: TestClient) -> None:
    holder = add_account(ctx)
    link = mail_link(ctx, holder)
    answer = client.post(link, data={"password": PASSWORD + "x"})
    assert answer.status_code == 403
    assert 'role="alert"' in answer.text and "密碼錯誤" in answer.text and "尚可再試 4 次" in answer.text
    assert 'type="password"' in answer.text  # the person can try again on the same page
    assert client.post(link, data={"password": PASSWORD}).status_code == 200
