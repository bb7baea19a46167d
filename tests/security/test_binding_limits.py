"""Issue 13, finding 6: POST /api/shared-accounts/bindings with general_account = 1…24 answered each
company's 帳號, name and 統編 and mailed each of them, and request + withdraw ten times mailed the same
company ten times. Now (mailflow.accounts.shared): one answer for every account that cannot be bound, no
company data before the company confirms, one pending request per pair, and daily caps per shared account
and per general account that hold under 25 requests at once against the live app, on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.accounts import shared
from mailflow.context import AppContext
from mailflow.models import Account, AccountStatus, Application, Binding, OutboxMessage
from tests.accounts.test_shared_bindings import (
    confirm,
    consent_link,
)
from tests.factories import PASSWORD, SHARED_PASSWORD, add_general, add_shared
from tests.security.live import at_once, live_app
from tests.security.test_signup_limits import statuses, valid_ubns

AT_ONCE = 25
BINDINGS = "/api/shared-accounts/bindings"


def consent_mails(ctx: AppContext, to: str | None = None) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == "binding-request")
        if to is not None:
            query = query.where(OutboxMessage.to_key == to)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def bindings(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Binding)) or 0


def signed_in(http: Any, account: str) -> Any:
    answer = http.post("/api/session", json={"account": account, "password": SHARED_PASSWORD})
    assert answer.status_code == 200, answer.text
    return http


def company_words(ctx: AppContext, general: str) -> list[str]:
    """What must not show before consent: the general account's 帳號, company name and 統編."""
    with ctx.db.session() as session:
        account = session.scalars(select(Account).where(Account.account_key == general)).one()
        application = session.scalars(select(Application).where(Application.account_id == account.id)).one()
        return [general, application.company_name, application.ubn]


def same_page(html: str, typed: str) -> str:
    """A page without what differs by design: the typed value and the forms' CSRF tokens."""
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html).replace(f'value="{typed}"', "")


# --- one answer, no company data ------------------------------------------------------------------------


def test_every_account_that_cannot_be_bound_gets_the_same_answer_on_the_api_and_the_page(
        ctx: AppContext, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "SHARED_DAILY_LIMIT", 100)  # more asks here than one day allows
    ubns = valid_ubns(5)
    add_general(ctx, "unverified1", ubns[0], verified=False)
    add_general(ctx, "pending1", ubns[1], status=AccountStatus.PENDING)
    add_general(ctx, "rejected1", ubns[2], status=AccountStatus.REJECTED)
    add_general(ctx, "suspended1", ubns[3], status=AccountStatus.SUSPENDED)
    add_shared(ctx, "other01")
    add_shared(ctx, "manager01")
    signed_in(client, "manager01")
    page = client.get("/account")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    with ctx.db.session() as session:
        numbers = [str(n) for n in session.scalars(select(Application.id))]
    targets = ["nobody99", "unverified1", "pending1", "rejected1", "suspended1", "other01", "manager01",
               *numbers, "999", str(2**40)]
    answers = {t: client.post(BINDINGS, json={"general_account": t}) for t in targets}
    assert {(a.status_code, a.text) for a in answers.values()} == {
        (409, httpx.Response(409, json={"error": shared.NOT_BINDABLE}).text)}
    assert "未寄出任何信件" in shared.NOT_BINDABLE and "完成Email驗證後再送出" in shared.NOT_BINDABLE
    pages = [client.post("/account/bindings", data={"general_account": t, "csrf_token": token.group(1)})
             for t in targets]
    assert {p.status_code for p in pages} == {409}
    for target, answer in zip(targets, pages, strict=True):
        assert shared.NOT_BINDABLE in answer.text
        # the page names the account as typed, and nothing else about it
        assert same_page(answer.text, target) == same_page(pages[0].text, targets[0]), target
    assert bindings(ctx) == 0 and consent_mails(ctx) == []


def test_no_company_data_reaches_the_requester_until_the_company_confirms(
        ctx: AppContext, client: TestClient) -> None:
    general_id = add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    signed_in(client, "manager01")
    with ctx.db.session() as session:
        number = session.scalars(select(Application.id).where(Application.account_id == general_id)).one()
    asked = client.post(BINDINGS, json={"general_account": number})
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["general_account"] == str(number)  # as typed
    assert body["ubn"] is None and body["company_name"] is None and body["flags"] == []
    listed = client.get(BINDINGS)
    page = client.get("/account")
    for words in company_words(ctx, "harbor01"):
        assert words not in asked.text and words not in listed.text and words not in page.text, words
    # The company confirms with its password: now the requester sees whom it bound.
    confirm(ctx, consent_link(ctx, body["id"]), PASSWORD)
    (row,) = client.get(BINDINGS).json()["bindings"]
    assert (row["general_account"], row["ubn"], row["company_name"]) == (
        "harbor01", "04595257", "harbor01股份有限公司")


def test_the_company_side_sees_who_asks(ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    asked = signed_in(client, "manager01").post(BINDINGS, json={"general_account": "harbor01"})
    assert asked.status_code == 202
    company = TestClient(client.app)
    assert company.post("/api/session", json={"account": "harbor01", "password": PASSWORD}
                        ).status_code == 200
    (row,) = company.get(BINDINGS).json()["bindings"]
    assert (row["shared_account"], row["general_account"], row["ubn"]) == (
        "manager01", "harbor01", "04595257")


# --- the daily caps -------------------------------------------------------------------------------------


def test_request_and_withdraw_in_a_loop_mails_a_company_at_most_the_daily_cap(
        ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    signed_in(client, "manager01")
    answers = []
    for _ in range(10):
        asked = client.post(BINDINGS, json={"general_account": "harbor01"})
        answers.append(asked.status_code)
        if asked.status_code == 202:
            assert client.delete(f"{BINDINGS}/{asked.json()['id']}").status_code == 200
        else:
            assert asked.status_code == 429 and asked.json()["error"] == shared.MSG_GENERAL_DAILY
            assert 0 < int(asked.headers["retry-after"]) <= shared.DAY_SECONDS
    assert answers == [202] * shared.GENERAL_DAILY_LIMIT + [429] * (10 - shared.GENERAL_DAILY_LIMIT)
    assert len(consent_mails(ctx, "harbor01@example.com")) == shared.GENERAL_DAILY_LIMIT


def test_25_requests_at_once_from_one_shared_account_stop_at_its_daily_cap(ctx: AppContext) -> None:
    targets = [f"harbor{i:02d}" for i in range(AT_ONCE)]
    for account, ubn in zip(targets, valid_ubns(AT_ONCE), strict=True):
        add_general(ctx, account, ubn)
    add_shared(ctx, "manager01")
    with live_app(ctx) as live, live.client() as http:
        signed_in(http, "manager01")
        answers = at_once(AT_ONCE, lambda i: http.post(BINDINGS, json={"general_account": targets[i]}))
        # asking on past the cap, even for accounts that do not exist, is refused the same way
        later = http.post(BINDINGS, json={"general_account": "nobody99"})
    assert statuses(answers) == {202: shared.SHARED_DAILY_LIMIT, 429: AT_ONCE - shared.SHARED_DAILY_LIMIT}
    assert later.status_code == 429 and later.json()["error"] == shared.MSG_SHARED_DAILY
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.json()["error"] == shared.MSG_SHARED_DAILY and int(refused.headers["retry-after"]) > 0
    assert len(consent_mails(ctx)) == bindings(ctx) == shared.SHARED_DAILY_LIMIT


def test_25_shared_accounts_asking_one_company_at_once_mail_it_at_most_its_daily_cap(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    requesters = [f"manager{i:02d}" for i in range(AT_ONCE)]
    for account in requesters:
        add_shared(ctx, account)
    with live_app(ctx) as live:
        clients = [signed_in(live.client(), account) for account in requesters]
        try:
            answers = at_once(AT_ONCE, lambda i: clients[i].post(BINDINGS,
                                                                 json={"general_account": "harbor01"}))
        finally:
            for http in clients:
                http.close()
    assert statuses(answers) == {202: shared.GENERAL_DAILY_LIMIT, 429: AT_ONCE - shared.GENERAL_DAILY_LIMIT}
    assert len(consent_mails(ctx, "harbor01@example.com")) == bindings(ctx) == shared.GENERAL_DAILY_LIMIT


def test_25_identical_requests_at_once_leave_one_pending_request_and_one_mail(ctx: AppContext) -> None:
    add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    with live_app(ctx) as live, live.client() as http:
        signed_in(http, "manager01")
        answers = at_once(AT_ONCE, lambda _: http.post(BINDINGS, json={"general_account": "harbor01"}))
    assert statuses(answers)[202] == 1
    # the others saw the pending request, raced past that check into the company's daily cap, or came
    # after the requester's own 20
    assert {(a.status_code, a.json()["error"]) for a in answers if a.status_code != 202} <= {
        (409, shared.MSG_PENDING), (429, shared.MSG_GENERAL_DAILY), (429, shared.MSG_SHARED_DAILY)}
    assert len(consent_mails(ctx)) == bindings(ctx) == 1


def test_a_refused_request_counts_too(ctx: AppContext, client: TestClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Naming accounts one by one costs a request each, found or not: the enumeration ends at the cap
    (the counter is committed in its own transaction, whatever becomes of the request's)."""
    monkeypatch.setattr(shared, "SHARED_DAILY_LIMIT", 1)
    add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    signed_in(client, "manager01")
    assert client.post(BINDINGS, json={"general_account": "nobody99"}).status_code == 409
    refused = client.post(BINDINGS, json={"general_account": "harbor01"})
    assert refused.status_code == 429 and consent_mails(ctx) == []


def test_the_account_page_says_the_daily_cap_with_retry_after(ctx: AppContext, client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "GENERAL_DAILY_LIMIT", 1)
    add_general(ctx, "harbor01", "04595257")
    add_shared(ctx, "manager01")
    signed_in(client, "manager01")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text)
    assert token
    form = {"general_account": "harbor01", "csrf_token": token.group(1)}
    assert client.post("/account/bindings", data=form, follow_redirects=False).status_code == 303
    (row,) = client.get(BINDINGS).json()["bindings"]
    assert client.delete(f"{BINDINGS}/{row['id']}").status_code == 200
    again = client.post("/account/bindings", data=form)
    assert again.status_code == 429 and shared.MSG_GENERAL_DAILY in again.text
    assert int(again.headers["retry-after"]) > 0 and len(consent_mails(ctx)) == 1
