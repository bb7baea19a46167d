"""The browser twins of the session rules: the /account page's logout ends the session on the server like
DELETE /api/session; its login form's 429 says when to come back; and the verification-mail form counts
failed passwords per account and address, like the login."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mailflow.context import AppContext
from tests.factories import PASSWORD, add_account
from tests.web.test_login_session import (
    SHARED_PASSWORD,
    bound_shared_account,
    login,
    session_works,
    with_cookie,
)
from tests.web.test_shared_web import csrf_of


def test_the_page_logout_ends_the_session_for_every_copy_of_the_cookie(ctx: AppContext,
                                                                       client: TestClient) -> None:
    bound_shared_account(ctx)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    kept = client.cookies["mf_session"]
    page = client.get("/account")
    out = client.post("/account/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert session_works(with_cookie(client, kept)) == (401, 401)


def test_the_page_login_says_when_to_try_again(ctx: AppContext, client: TestClient) -> None:
    bound_shared_account(ctx)
    for _ in range(10):
        form = client.get("/account")
        client.post("/account/login", data={"account": "manager01", "password": "Wrong12345",
                                             "csrf_token": csrf_of(form.text)})
    form = client.get("/account")
    refused = client.post("/account/login", data={"account": "manager01", "password": SHARED_PASSWORD,
                                                  "csrf_token": csrf_of(form.text)})
    assert refused.status_code == 429 and "嘗試次數過多" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60


def test_the_verification_mail_form_counts_failures_per_account_and_address(ctx: AppContext,
                                                                           client: TestClient) -> None:
    add_account(ctx)
    ask = {"account": "example1234", "password": "Wrong12345"}
    for _ in range(10):
        assert client.post("/api/verification-mails", json=ask).status_code == 401
    assert client.post("/api/verification-mails", json={**ask, "password": PASSWORD}).status_code == 429
    # The holder elsewhere is not locked out by someone guessing from this address.
    elsewhere = TestClient(client.app, client=("198.51.100.7", 40000))
    assert elsewhere.post("/api/verification-mails", json={**ask, "password": PASSWORD}).status_code == 202
