"""The self-service limits and the one-link rule under requests at the same moment, against the live app
(uvicorn in this process) on SQLite and PostgreSQL: each counter is exact, and however many resets or
changes run at once, exactly one link stays usable."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from mailflow.accounts import selfservice
from mailflow.context import AppContext
from mailflow.models import TokenPurpose
from tests.peers import wait_until
from tests.security.live import at_once, live_app
from tests.selfservice.conftest import PASSWORD, holder, open_tokens, outbox

AT_ONCE = 25


def statuses(codes: list[int]) -> dict[int, int]:
    return {code: codes.count(code) for code in sorted(set(codes))}


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[[], int]:
    """Wrap selfservice.<name> (the work done after the answer) to count the runs that finished."""
    done = [0]
    lock = threading.Lock()
    original = getattr(selfservice, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                done[0] += 1

    monkeypatch.setattr(selfservice, name, wrapper)
    return lambda: done[0]


def test_requests_at_once_from_one_client_stop_at_its_limit(ctx: AppContext) -> None:
    with live_app(ctx) as live, live.client() as http:
        codes = at_once(AT_ONCE, lambda i: http.post("/api/password-resets",
                                                     json={"account": f"nobody{i:03d}"}).status_code)
        refused = http.post("/api/account-reminders", json={"email": "x@example.com"})  # the same counter
    assert statuses(codes) == {202: selfservice.CLIENT_LIMIT, 429: AT_ONCE - selfservice.CLIENT_LIMIT}
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "次數過多" in refused.json()["error"]


def test_resets_of_one_account_at_once_mail_its_limit_and_leave_one_usable_link(
        ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = holder(ctx)
    monkeypatch.setattr(selfservice, "CLIENT_LIMIT", 1000)
    monkeypatch.setattr(selfservice, "ADDRESS_LIMIT", 1000)
    finished = counting(monkeypatch, "request_password_reset")
    with live_app(ctx) as live, live.client() as http:
        codes = at_once(AT_ONCE, lambda i: http.post("/api/password-resets",
                                                     json={"account": "wang1234"}).status_code)
        wait_until(lambda: finished() == AT_ONCE, 60, "every reset request's work after its answer")
    assert statuses(codes) == {202: AT_ONCE}
    assert len(outbox(ctx, "password-reset")) == selfservice.ACCOUNT_LIMIT
    assert open_tokens(ctx, account_id) == 1


def test_a_recovery_address_gets_at_most_its_limit_of_mails(ctx: AppContext,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    holder(ctx)
    monkeypatch.setattr(selfservice, "CLIENT_LIMIT", 1000)
    finished = counting(monkeypatch, "send_account_reminder")
    with live_app(ctx) as live, live.client() as http:
        codes = at_once(AT_ONCE, lambda i: http.post("/api/account-reminders",
                                                     json={"email": "wang@example.com"}).status_code)
        wait_until(lambda: finished() == AT_ONCE, 60, "every reminder request's work after its answer")
    assert statuses(codes) == {202: AT_ONCE}
    assert len(outbox(ctx, "account-reminder")) == selfservice.ADDRESS_LIMIT


def test_twenty_resets_issued_at_once_leave_exactly_one_usable_link(ctx: AppContext) -> None:
    account_id = holder(ctx)

    def issue(_: int) -> bool:
        with ctx.db.session() as session:
            return selfservice.queue_reset(session, ctx.settings, account_id, by="account") is not None

    assert at_once(20, issue) == [True] * 20
    assert len(outbox(ctx, "password-reset")) == 20
    assert open_tokens(ctx, account_id) == 1


def test_email_changes_asked_at_once_stop_at_the_limit_with_one_usable_link(ctx: AppContext) -> None:
    account_id = holder(ctx)
    with live_app(ctx) as live, live.client() as http:
        signed = http.post("/api/session", json={"account": "wang1234", "password": PASSWORD})
        assert signed.status_code == 200
        codes = at_once(20, lambda i: http.post("/api/account/email", json={
            "email": f"new{i:02d}@example.com", "password": PASSWORD}).status_code)
    assert statuses(codes) == {202: selfservice.EMAIL_CHANGE_LIMIT, 429: 20 - selfservice.EMAIL_CHANGE_LIMIT}
    assert len(outbox(ctx, "email-change")) == selfservice.EMAIL_CHANGE_LIMIT
    assert open_tokens(ctx, account_id, TokenPurpose.EMAIL_CHANGE) == 1
