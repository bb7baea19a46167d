"""The /account page of a shared account asks for bindings itself (issue 15 item 1): a form with the
general account's 帳號, the pending requests with their state and a way to cancel them. The form calls the
same domain function as POST /api/shared-accounts/bindings and answers no more than that API: the same
status and message for every refusal, and no company data before the general account confirms."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.models import Binding, BindingStatus, VerificationToken
from tests.factories import PASSWORD
from tests.web.test_shared_web import (
    COMPANIES,
    SHARED_PASSWORD,
    add_general,
    csrf_of,
    login,
    outbox,
    register_verified_shared,
    second_client,
)

PENDING = '<span class="badge warn">等待確認</span>'


def signed_in_shared(ctx: AppContext, client: TestClient) -> str:
    """manager01, verified and logged in; returns a CSRF token for the page's forms."""
    register_verified_shared(ctx, client)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    page = client.get("/account")
    assert page.status_code == 200
    return csrf_of(page.text)


def ask(client: TestClient, token: str, general: str) -> object:
    return client.post("/account/bindings", data={"general_account": general, "csrf_token": token},
                       follow_redirects=False)


def test_the_page_of_a_shared_account_has_the_binding_form(ctx: AppContext, client: TestClient) -> None:
    signed_in_shared(ctx, client)
    page = client.get("/account").text
    assert 'action="/account/bindings"' in page and 'name="general_account"' in page
    assert '<label for="general-account" class="required">一般帳號的帳號</label>' in page


def test_a_request_from_the_page_mails_the_company_and_lists_it_pending(ctx: AppContext,
                                                                      client: TestClient) -> None:
    account, ubn = COMPANIES[0]
    add_general(ctx, account, ubn)
    token = signed_in_shared(ctx, client)
    assert client.post("/account/bindings", data={"general_account": account}).status_code == 403  # no CSRF
    assert outbox(ctx, "binding-request") == []
    sent = ask(client, token, f"  {account.upper()} ")
    assert sent.status_code == 303  # type: ignore[attr-defined]
    assert sent.headers["location"] == "/account?done=requested"  # type: ignore[attr-defined]
    (mail,) = outbox(ctx, "binding-request", f"{account}@example.com")
    page = client.get("/account?done=requested").text
    assert "已寄出綁定確認信至該一般帳號的Email" in page
    assert PENDING in page and "取消請求" in page and account.upper() in page  # as typed
    assert ubn not in page and f"{account}股份有限公司" not in page  # no company data before consent
    assert "對方確認後顯示" in page
    with ctx.db.session() as session:
        assert session.scalars(select(Binding.status)).one() == BindingStatus.PENDING
        assert mail.token_id is not None


def test_every_refusal_reads_as_the_api_says_it(ctx: AppContext, client: TestClient) -> None:
    account, ubn = COMPANIES[0]
    add_general(ctx, account, ubn)
    add_general(ctx, "unverified1", COMPANIES[1][1], verified=False)
    token = signed_in_shared(ctx, client)
    assert ask(client, token, account).status_code == 303  # type: ignore[attr-defined]
    for typed in (account, "nobody999", "unverified1", "manager01"):
        api = client.post("/api/shared-accounts/bindings", json={"general_account": typed})
        page = client.post("/account/bindings", data={"general_account": typed, "csrf_token": token})
        assert page.status_code == api.status_code, typed
        if api.status_code == 202:
            continue
        assert api.json()["error"] in page.text, typed
        assert f'value="{typed}"' in page.text  # kept for the clerk to correct
    empty = client.post("/account/bindings", data={"general_account": " ", "csrf_token": token})
    assert empty.status_code == 422 and "請輸入要綁定的一般帳號" in empty.text


def test_a_pending_request_is_cancelled_from_the_page(ctx: AppContext, client: TestClient) -> None:
    account, ubn = COMPANIES[0]
    add_general(ctx, account, ubn)
    token = signed_in_shared(ctx, client)
    ask(client, token, account)
    with ctx.db.session() as session:
        binding_id = session.scalars(select(Binding.id)).one()
    cancelled = client.post(f"/account/bindings/{binding_id}/unbind", data={"csrf_token": token},
                            follow_redirects=False)
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/account?done=cancelled"
    page = client.get(cancelled.headers["location"]).text
    assert "已取消綁定請求" in page and PENDING not in page
    with ctx.db.session() as session:
        assert session.scalars(select(Binding.status)).one() == BindingStatus.UNBOUND
        assert session.scalars(select(VerificationToken.voided_at)
                               .where(VerificationToken.binding_id == binding_id)).one() is not None
    assert outbox(ctx, "binding-ended") == []  # nothing was bound, so nobody is told it ended


def test_a_general_account_sees_no_binding_form(ctx: AppContext, client: TestClient) -> None:
    account, ubn = COMPANIES[0]
    add_general(ctx, account, ubn)
    other = second_client(client)
    assert login(other, account, PASSWORD).status_code == 200
    page = other.get("/account").text
    assert 'action="/account/bindings"' not in page and "管理本公司的共用帳號" in page
