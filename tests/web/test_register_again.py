"""After a refused registration (issue 15 item 3): every field keeps what the clerk typed except the
passwords and the document, and the page says which ones to give again; the 帳號 field is checked as the
clerk leaves it (GET /api/account-availability), answering no more than the registration's own 409 and at
most AVAILABILITY_LIMIT times per client address and window, however many ask at once."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from browser.conftest import LiveSite, live_site_fixture  # noqa: F401 (a live uvicorn, no browser needed)
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow import ratelimit
from mailflow.accounts import registration
from mailflow.accounts.rules import MESSAGES
from mailflow.context import AppContext
from mailflow.models import RateCounter
from mailflow.web.applicant import GIVE_AGAIN, GIVE_AGAIN_NOTICE
from tests.web.test_register_api import FIELDS
from tests.web.test_register_api import post as api_register
from tests.web.test_register_form import FORM, PDF, csrf_from, field_error, input_value, submit
from tests.web.test_shared_web import SHARED_FIELDS, csrf_of


@pytest.mark.parametrize(("changes", "status"), [({"mobile": "12345"}, 422), ({}, 409)])
def test_a_refused_form_keeps_every_field_but_the_secrets_and_says_so(
    client: TestClient, ctx: AppContext, changes: dict[str, str], status: int
) -> None:
    token = csrf_from(client.get("/register").text)
    if status == 409:
        assert submit(client, token).status_code == 200  # the account id is taken by this first one
        changes = {"ubn": "04595257"}
    page = submit(client, token, PDF, True, **changes)
    assert page.status_code == status
    typed = {**FORM, **changes}
    for field in FORM:
        if field in GIVE_AGAIN:
            assert input_value(page.text, field) == ""
        else:
            assert input_value(page.text, field) == typed[field], field
    for field, words in GIVE_AGAIN.items():
        assert field_error(page.text, field) == words, field
    assert GIVE_AGAIN_NOTICE in page.text


def test_the_shared_form_keeps_the_fields_and_asks_for_the_passwords_again(client: TestClient) -> None:
    token = csrf_of(client.get("/shared/register").text)
    page = client.post("/shared/register", data={**SHARED_FIELDS, "mobile": "abc", "csrf_token": token})
    assert page.status_code == 422
    assert 'value="manager01"' in page.text and SHARED_FIELDS["email"] in page.text
    assert GIVE_AGAIN["password"] in page.text and "密碼及確認密碼請重新輸入" in page.text


def availability(client: Any, account: str) -> Any:
    return client.get("/api/account-availability", params={"account": account})


def test_availability_answers_as_the_registration_would(client: TestClient, ctx: AppContext) -> None:
    free = availability(client, "  harbour2024 ")
    assert free.status_code == 200
    assert free.json() == {"account": "harbour2024", "available": True,
                           "message": registration.AVAILABLE_TEXT}
    assert free.headers["cache-control"] == "no-store"
    assert api_register(client).status_code == 201  # registers FIELDS' account id
    for spelled in (FIELDS["account"], FIELDS["account"].upper()):
        taken = availability(client, spelled)
        assert taken.status_code == 409 and taken.json() == {"errors": {"account": "帳號已經存在"}}
    bad = availability(client, "1abc")
    assert bad.status_code == 422 and bad.json() == {"errors": {"account": MESSAGES["account"]}}
    empty = availability(client, "")
    assert empty.status_code == 422 and empty.json() == {"errors": {"account": "請輸入帳號"}}


def test_a_shared_account_id_is_taken_too(client: TestClient) -> None:
    assert client.post("/api/shared-accounts", data=SHARED_FIELDS).status_code == 201
    assert availability(client, SHARED_FIELDS["account"]).status_code == 409


START = 600.0 * 1000  # the start of a 600-second window


def test_the_counter_allows_exactly_the_limit_across_racing_transactions(ctx: AppContext) -> None:
    """30 requests of one key at the same moment, each in its own transaction: exactly 12 get through."""
    allowed: list[bool] = []
    gate = threading.Barrier(30)

    def one() -> None:
        gate.wait()
        with ctx.db.session() as session:
            allowed.append(ratelimit.take(session, "race", 12, 600, at=START) is None)

    threads = [threading.Thread(target=one) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 12 and len(allowed) == 30
    with ctx.db.session() as session:
        assert session.get(RateCounter, "race") is not None
        assert ratelimit.take(session, "race", 12, 600, at=START + 599) == 1  # the same window: wait 1 s
        assert ratelimit.take(session, "race", 12, 600, at=START + 600) is None  # the next one starts at 0
        assert ratelimit.prune(session, at=START + 1200 + 86400) == 0  # closed less than a day ago
        assert ratelimit.prune(session, at=START + 1200 + 86401) == 1


def test_availability_is_limited_per_client_when_25_ask_at_once(
    live_site: LiveSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registration, "AVAILABILITY_LIMIT", 10)
    answers: list[httpx.Response] = []
    gate = threading.Barrier(25)

    def one(index: int) -> None:
        with httpx.Client(base_url=live_site.url, timeout=60) as http:
            gate.wait()
            answers.append(availability(http, f"someone{index:02d}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 10 + [429] * 15
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert list(refused.json()) == ["error"] and int(refused.headers["retry-after"]) >= 1
    with live_site.ctx.db.session() as session:
        counters = session.scalars(select(RateCounter)).all()
        assert [c.count for c in counters] == [10]
