"""Shared accounts (共用帳號) over real HTTP: the whole story of issue 7 and every refusal.

Three companies are registered, approved and verified (written straight into the database, as review and
verification leave them); everything the shared account does goes through the routes of the contract,
and links are read from the outbox rows the way dispatch would put them into mails.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import shared
from mailflow.context import AppContext
from mailflow.models import (
    Account,
    AccountKind,
    AuditEvent,
    Binding,
    BindingStatus,
    OutboxMessage,
    VerificationToken,
)
from mailflow.timeutil import now
from tests.factories import PASSWORD, SHARED_PASSWORD, add_general

# The company factory is shared with the tests below the web (tests/accounts/test_shared_bindings.py).

COMPANIES = (("harbor01", "04595257"), ("harbor02", "12345675"), ("harbor03", "22099131"))
SHARED_FIELDS = {"account": "manager01", "name": "林美玲", "mobile": "0922333444",
                 "email": "manager01@example.org", "password": SHARED_PASSWORD,
                 "password_confirm": SHARED_PASSWORD}


def outbox(ctx: AppContext, template: str, to: str | None = None) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == template).order_by(OutboxMessage.id)
        if to is not None:
            query = query.where(OutboxMessage.to_key == to)
        return list(session.scalars(query))


def link_token(mail: OutboxMessage) -> str:
    url = str(mail.context.get("confirm_url") or mail.context.get("verify_url"))
    return url.rsplit("/verify/", 1)[1]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def open_link(client: TestClient, token: str, password: str) -> Any:
    """What a person does with a mailed link: open the page, type the password, submit."""
    page = client.get(f"/verify/{token}")
    form = {"password": password}
    if 'name="csrf_token"' in page.text:
        form["csrf_token"] = csrf_of(page.text)
    return client.post(f"/verify/{token}", data=form)


def login(client: TestClient, account: str, password: str) -> Any:
    return client.post("/api/session", json={"account": account, "password": password})


def register_verified_shared(ctx: AppContext, client: TestClient) -> dict[str, Any]:
    created = client.post("/api/shared-accounts", data=SHARED_FIELDS)
    assert created.status_code == 201, created.text
    (mail,) = outbox(ctx, "account-approved", "manager01@example.org")
    assert open_link(client, link_token(mail), SHARED_PASSWORD).status_code == 200
    return dict(created.json())


def second_client(client: TestClient) -> TestClient:
    """Another browser on the same app: its own cookies."""
    return TestClient(client.app)


def test_the_whole_story(ctx: AppContext, client: TestClient) -> None:
    general_ids = {account: add_general(ctx, account, ubn) for account, ubn in COMPANIES}

    created = client.post("/api/shared-accounts", data=SHARED_FIELDS)
    assert created.status_code == 201
    assert created.json()["account"] == "manager01" and created.json()["status"] == "approved"
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 403  # not verified yet
    (verify_mail,) = outbox(ctx, "account-approved", "manager01@example.org")
    assert open_link(client, link_token(verify_mail), SHARED_PASSWORD).status_code == 200

    session = login(client, "manager01", SHARED_PASSWORD)
    assert session.status_code == 200
    assert session.json()["kind"] == "shared" and session.json()["companies"] == []

    for account, _ in COMPANIES:
        asked = client.post("/api/shared-accounts/bindings", json={"general_account": account})
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "pending"
    consent = {account: outbox(ctx, "binding-request", f"{account}@example.com") for account, _ in COMPANIES}
    assert all(len(mails) == 1 for mails in consent.values())  # to each company, none to the requester
    assert outbox(ctx, "binding-request", "manager01@example.org") == []
    assert {m[0].account_id for m in consent.values()} == set(general_ids.values())

    company_browser = second_client(client)
    token1 = link_token(consent["harbor01"][0])
    assert open_link(company_browser, token1, SHARED_PASSWORD).status_code == 403  # the requester's password
    assert open_link(company_browser, token1, "Wrong1password").status_code == 403
    assert open_link(company_browser, token1, PASSWORD).status_code == 200
    assert open_link(company_browser, link_token(consent["harbor02"][0]), PASSWORD).status_code == 200
    with ctx.db.session() as db:
        token3 = db.scalars(select(VerificationToken).where(
            VerificationToken.id == consent["harbor03"][0].token_id)).one()
        token3.expires_at = now() - timedelta(seconds=1)
    assert open_link(company_browser, link_token(consent["harbor03"][0]), PASSWORD).status_code == 410

    session = login(client, "manager01", SHARED_PASSWORD)
    assert sorted(c["ubn"] for c in session.json()["companies"]) == ["04595257", "12345675"]
    assert client.post("/api/session/switch", json={"ubn": "22099131"}).status_code == 403
    switched = client.post("/api/session/switch", json={"ubn": "12345675"})
    assert switched.status_code == 200 and switched.json()["active_ubn"] == "12345675"
    page = client.get("/account")
    assert page.status_code == 200
    assert "harbor01股份有限公司" in page.text and "harbor02股份有限公司" in page.text
    assert "harbor03股份有限公司" not in page.text and "目前使用中" in page.text
    with ctx.db.session() as db:
        assert db.scalars(select(AuditEvent).where(AuditEvent.action == "shared.switch")).one().details[
            "ubn"] == "12345675"

    bindings = client.get("/api/shared-accounts/bindings").json()["bindings"]
    first = next(b for b in bindings if b["general_account"] == "harbor01")
    assert client.delete(f"/api/shared-accounts/bindings/{first['id']}").status_code == 200
    (notice,) = outbox(ctx, "binding-ended", "harbor01@example.com")
    assert notice.context["ended_by"] == "shared" and notice.context["shared_account"] == "manager01"
    assert [c["ubn"] for c in login(client, "manager01", SHARED_PASSWORD).json()["companies"]] == ["12345675"]

    assert login(company_browser, "harbor02", PASSWORD).status_code == 200
    theirs = company_browser.get("/api/shared-accounts/bindings").json()["bindings"]
    assert [b["shared_account"] for b in theirs] == ["manager01"]
    ended = company_browser.post(f"/api/shared-accounts/bindings/{theirs[0]['id']}/unbind", json={})
    assert ended.status_code == 200
    (notice,) = outbox(ctx, "binding-ended", "manager01@example.org")
    assert notice.context["ended_by"] == "general"
    assert login(client, "manager01", SHARED_PASSWORD).json()["companies"] == []


def test_without_a_session_every_shared_route_answers_401(client: TestClient) -> None:
    asked = client.post("/api/shared-accounts/bindings", json={"general_account": "harbor01"})
    assert asked.status_code == 401 and asked.json()["error"] == "請先登入"
    assert client.get("/api/shared-accounts/bindings").status_code == 401
    assert client.delete("/api/shared-accounts/bindings/1").status_code == 401
    assert client.post("/api/session/switch", json={"ubn": "04595257"}).status_code == 401
    page = client.get("/account")
    assert page.status_code == 401 and "請先登入" in page.text


def test_binding_refusals(ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", "04595257")
    add_general(ctx, "unverified1", "12345675", verified=False)
    register_verified_shared(ctx, client)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200

    def ask(body: Any) -> Any:
        return client.post("/api/shared-accounts/bindings", json=body)

    # Unknown, unverified, a shared account: one answer, the contract's 409 for "not verified".
    for target in ("nobody99", "unverified1", "manager01"):
        refused = ask({"general_account": target})
        assert refused.status_code == 409 and refused.json() == {"error": shared.NOT_BINDABLE}, target
    assert ask({"general_account": ""}).status_code == 422
    assert ask(["harbor01"]).status_code == 422
    assert client.post("/api/shared-accounts/bindings", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert ask({"general_account": "harbor01"}).status_code == 202
    twice = ask({"general_account": "harbor01"})
    assert twice.status_code == 409 and "等待" in twice.json()["error"]
    assert len(outbox(ctx, "binding-request")) == 1
    assert client.post("/api/session/switch", json={"ubn": "04595257"}).status_code == 403  # pending only
    assert client.post("/api/session/switch", json={}).status_code == 422
    assert client.post("/api/shared-accounts/bindings/1/unbind", data={"x": "1"}).status_code == 415
    assert client.post("/api/shared-accounts/bindings/999/unbind", json={}).status_code == 404
    assert client.delete("/api/shared-accounts/bindings/x").status_code == 404  # names no binding

    with ctx.db.session() as db:  # the address changed after verification: no longer verified
        account = db.scalars(select(Account).where(Account.account_key == "manager01")).one()
        account.email, account.email_key = "new@example.org", "new@example.org"
        assert db.scalars(select(Binding)).one().status == BindingStatus.PENDING
    # The session ends with the verification (the login gate), and logging in again says why.
    assert ask({"general_account": "harbor01"}).status_code == 401
    relogin = login(client, "manager01", SHARED_PASSWORD)
    assert relogin.status_code == 403 and "驗證" in relogin.json()["error"]


def test_registration_api_refusals_leave_nothing_behind(ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", "04595257")
    bad = client.post("/api/shared-accounts", data={**SHARED_FIELDS, "mobile": "12", "password_confirm": "x"})
    assert bad.status_code == 422 and set(bad.json()["errors"]) >= {"mobile", "password_confirm"}
    taken = client.post("/api/shared-accounts", data={**SHARED_FIELDS, "account": "Harbor01"})
    assert taken.status_code == 409 and taken.json() == {"errors": {"account": "帳號已經存在"}}
    plain = client.post("/api/shared-accounts", content=b"\x00\xff", headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "error" in plain.json()
    as_json = client.post("/api/shared-accounts", json={**SHARED_FIELDS, "account": "manager02"})
    assert as_json.status_code == 201
    with ctx.db.session() as db:
        shared_accounts = db.scalars(select(Account).where(Account.kind == AccountKind.SHARED)).all()
        assert [a.account for a in shared_accounts] == ["manager02"]
    assert len(outbox(ctx, "account-approved")) == 1
    again = client.post("/api/shared-accounts", data={**SHARED_FIELDS, "account": "MANAGER02"})
    assert again.status_code == 409


def test_the_register_page_works_without_javascript(ctx: AppContext, client: TestClient) -> None:
    form = client.get("/shared/register")
    assert form.status_code == 200
    for words in ("帳號", "姓名", "手機電話", "Email", "確認密碼", "確定要送出申請?", "example1234",
                  "王小明"):
        assert words in form.text
    token = csrf_of(form.text)
    no_token = client.post("/shared/register", data=SHARED_FIELDS)
    assert no_token.status_code == 403
    wrong = client.post("/shared/register", data={**SHARED_FIELDS, "mobile": "abc", "csrf_token": token})
    assert wrong.status_code == 422 and "手機電話" in wrong.text and 'value="manager01"' in wrong.text
    assert SHARED_PASSWORD not in wrong.text  # passwords are never echoed back
    done = client.post("/shared/register", data={**SHARED_FIELDS, "csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/shared/registered?r=")
    for _ in range(2):  # a reload shows the result again and sends nothing again
        result = client.get(done.headers["location"])
        assert result.status_code == 200 and "帳號資料已經成功送出,請收取Email!!" in result.text
    assert len(outbox(ctx, "account-approved", "manager01@example.org")) == 1


def test_the_account_page_switches_and_unbinds_with_one_click(ctx: AppContext, client: TestClient) -> None:
    for account, ubn in COMPANIES[:2]:
        add_general(ctx, account, ubn)
    register_verified_shared(ctx, client)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    company_browser = second_client(client)
    for account, _ in COMPANIES[:2]:
        asked = client.post("/api/shared-accounts/bindings", json={"general_account": account})
        assert asked.status_code == 202
        (mail,) = outbox(ctx, "binding-request", f"{account}@example.com")
        assert open_link(company_browser, link_token(mail), PASSWORD).status_code == 200
    with ctx.db.session() as db:  # a company whose mails bounce stays listed, marked
        db.scalars(select(Account).where(Account.account_key == "harbor02")).one().email_undeliverable = True

    client.cookies.clear()  # a fresh browser logs in on the page itself, without JavaScript
    page = client.get("/account")
    assert page.status_code == 401 and 'action="/account/login"' in page.text
    token = csrf_of(page.text)
    typed = {"account": "manager01", "password": "Wrong1password", "csrf_token": token}
    wrong = client.post("/account/login", data=typed)
    assert wrong.status_code == 401 and "帳號或密碼錯誤" in wrong.text
    assert client.post("/account/login", data={**typed, "csrf_token": ""}).status_code == 403
    token = csrf_of(wrong.text)
    entered = client.post("/account/login", data={**typed, "password": SHARED_PASSWORD, "csrf_token": token},
                          follow_redirects=False)
    assert entered.status_code == 303
    page = client.get("/account")
    assert "Email 無法送達" in page.text and page.text.count('action="/account/switch"') == 2
    assert client.post("/account/switch", data={"ubn": "12345675"}).status_code == 403  # no CSRF token
    moved = client.post("/account/switch", data={"ubn": "12345675", "csrf_token": token},
                        follow_redirects=False)
    assert moved.status_code == 303
    page = client.get(moved.headers["location"])
    assert "已切換公司" in page.text and page.text.count('action="/account/switch"') == 1
    refused = client.post("/account/switch", data={"ubn": "22099131", "csrf_token": token})
    assert refused.status_code == 403 and "未綁定" in refused.text

    with ctx.db.session() as db:
        binding_id = db.scalars(select(Binding).where(Binding.status == BindingStatus.ACTIVE)
                                .order_by(Binding.id)).first().id  # type: ignore[union-attr]
    ended = client.post(f"/account/bindings/{binding_id}/unbind", data={"csrf_token": token},
                        follow_redirects=False)
    assert ended.status_code == 303
    assert len(outbox(ctx, "binding-ended", "harbor01@example.com")) == 1
    again = client.post(f"/account/bindings/{binding_id}/unbind", data={"csrf_token": token})
    assert again.status_code == 409
    left = client.post("/account/logout", data={"csrf_token": token}, follow_redirects=False)
    assert left.status_code == 303 and client.get("/account").status_code == 401
