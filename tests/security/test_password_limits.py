"""Issue 13, findings 0-5 and 13: every password check — the verification link, the applicant login, the
new-mail form, the staff login — holds its limits under 20+ requests at once against the live app (uvicorn
in this process, threads released together), on SQLite and on PostgreSQL (--db=postgresql).

0. 20 wrong passwords at once on one link stalled the whole service on SQLite for 30 s (500s, /healthz
   silent): now the tries of one link are judged one at a time, holding no connection while they wait
   or while argon2 runs, and another link verifies meanwhile.
1. a link whose address changed answers the same to any password (tests/web/test_verify_moved.py), and a
   wrong password on a link counts against the login's limits.
2./3. counters reserved atomically before the password is checked: "5 wrong passwords void the link", the
   applicant's 10 per address and account, the staff login's limits hold under concurrency.
4./13. per account a growing wait after 20 failures from anywhere (not a lock: at most 15 minutes after
   the last wrong try); X-Forwarded-For believed only from a configured proxy.
5. staff logout and a staff password change end the sessions server-side.
13. the 503 warning names the route, never the token; /metrics is not open to anyone in relay mode.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from mailflow.accounts import throttle, verification
from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.models import Account, RateCounter, VerificationToken
from mailflow.web.app import create_app, server_options
from tests.factories import PASSWORD, STAFF_PASSWORD, add_account, add_staff, verified_account
from tests.security.live import at_once, live_app
from tests.web.test_verify import mail_link

AT_ONCE = 24


def answers(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def token_row(ctx: AppContext, link: str) -> VerificationToken:
    jti = link.rsplit("/", 1)[1].split(".")[0]
    with ctx.db.session() as session:
        row = session.scalar(select(VerificationToken).where(VerificationToken.jti == jti))
        assert row is not None
        session.expunge(row)
        return row


def is_verified(ctx: AppContext, account_id: int) -> bool:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        return account is not None and account.is_verified


class Watch:
    """/healthz asked every 50 ms from its own thread while a storm runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.codes: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                self.codes.append(http.get("/healthz").status_code)
                time.sleep(0.05)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


# --- findings 0 and 3: one link -----------------------------------------------------------------------


def test_20_wrong_passwords_at_once_on_one_link_judge_five_and_stall_nothing(ctx: AppContext) -> None:
    storm_link = mail_link(ctx, add_account(ctx))
    other_id = add_account(ctx, "other5678", "other@example.com")
    other_link = mail_link(ctx, other_id)
    count = 20
    with live_app(ctx) as live, live.client() as http, Watch(live.url) as health:
        def work(i: int) -> httpx.Response:
            if i == count:  # another applicant's link, at the same moment: it must not wait for the storm
                return http.post(other_link, data={"password": PASSWORD})
            return http.post(storm_link, data={"password": f"wrong-{i}"})

        results = at_once(count + 1, work)
    storm = answers(results[:count])
    assert storm == {403: verification.WRONG_PASSWORDS_VOID, 410: count - verification.WRONG_PASSWORDS_VOID}
    assert results[count].status_code == 200 and is_verified(ctx, other_id)
    row = token_row(ctx, storm_link)
    assert row.voided_at is not None and row.wrong_passwords == verification.WRONG_PASSWORDS_VOID
    assert health.codes and set(health.codes) == {200}


def test_past_the_waiting_cap_a_link_answers_429_at_once(ctx: AppContext,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from mailflow.web import verify as verify_routes

    monkeypatch.setattr(verify_routes, "MAX_WAITING_PER_LINK", 3)
    link = mail_link(ctx, add_account(ctx))
    with live_app(ctx) as live, live.client() as http:
        results = at_once(AT_ONCE, lambda i: http.post(link, data={"password": f"wrong-{i}"}))
    seen = answers(results)
    assert set(seen) <= {403, 410, 429} and seen[429] > 0
    assert all(r.headers["retry-after"] == "1" for r in results if r.status_code == 429)
    assert seen[403] <= verification.WRONG_PASSWORDS_VOID


def test_wrong_and_right_passwords_at_once_never_judge_more_than_five(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    right_at = 7
    with live_app(ctx) as live, live.client() as http:
        results = at_once(AT_ONCE, lambda i: http.post(
            link, data={"password": PASSWORD if i == right_at else f"wrong-{i}"}))
    seen = answers(results)
    assert set(seen) <= {200, 403, 410}  # no 5xx, no stall
    judged = seen[200] + seen[403]
    assert judged <= verification.WRONG_PASSWORDS_VOID
    row = token_row(ctx, link)
    if seen[200]:
        assert seen[200] == 1 and seen[403] < verification.WRONG_PASSWORDS_VOID
        assert is_verified(ctx, account_id) and row.used_at is not None and row.voided_at is None
    else:
        assert seen[403] == verification.WRONG_PASSWORDS_VOID and row.voided_at is not None
        assert not is_verified(ctx, account_id)


def test_wrong_passwords_on_a_link_count_against_the_login_limit(ctx: AppContext, client: TestClient) -> None:
    account_id = add_account(ctx)
    link = mail_link(ctx, account_id)
    for n in range(verification.WRONG_PASSWORDS_VOID):
        assert client.post(link, data={"password": f"wrong-{n}"}).status_code == 403
    left = throttle.PAIR_LIMIT - verification.WRONG_PASSWORDS_VOID
    for n in range(left):
        assert login(client, f"x{n}", account="example1234").status_code == 401
    assert login(client, PASSWORD, account="example1234").status_code == 429


# --- findings 3 and 4: the applicant login -----------------------------------------------------------------


def login(http: Any, password: str, address: str | None = None,
          account: str = "harbor01") -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return http.post("/api/session", json={"account": account, "password": password}, headers=headers)


def test_wrong_logins_at_once_from_one_address_stop_at_the_pair_limit(ctx: AppContext) -> None:
    verified_account(ctx, "harbor01", "harbor01@example.com")
    with live_app(ctx) as live, live.client() as http:
        results = at_once(AT_ONCE, lambda i: login(http, f"wrong-{i}"))
        assert answers(results) == {401: throttle.PAIR_LIMIT, 429: AT_ONCE - throttle.PAIR_LIMIT}
        assert all(int(r.headers["retry-after"]) > 0 for r in results if r.status_code == 429)
        assert login(http, PASSWORD).status_code == 429  # this address is stopped, the right password too


def test_a_forged_x_forwarded_for_changes_nothing_by_default(ctx: AppContext) -> None:
    verified_account(ctx, "harbor01", "harbor01@example.com")
    with live_app(ctx, **server_options(ctx.settings)) as live, live.client() as http:
        results = at_once(AT_ONCE, lambda i: login(http, f"wrong-{i}", f"203.0.113.{i + 1}"))
    assert answers(results) == {401: throttle.PAIR_LIMIT, 429: AT_ONCE - throttle.PAIR_LIMIT}


def trusted_proxy(ctx: AppContext) -> dict[str, Any]:
    """The daemon's uvicorn options with http.forwarded_allow_ips naming the proxy on this host."""
    http = replace(ctx.settings.http, forwarded_allow_ips="127.0.0.1")
    return server_options(replace(ctx.settings, http=http))


def open_the_wait(ctx: AppContext, key: str) -> None:
    """The account's wait has passed (without sleeping 30 s)."""
    with ctx.db.session() as session:
        session.execute(update(RateCounter).where(RateCounter.key == throttle.delay_key(key))
                        .values(window_end=int(time.time())))


def test_many_addresses_at_once_meet_the_accounts_growing_wait_which_never_locks_for_long(
    ctx: AppContext
) -> None:
    verified_account(ctx, "harbor01", "harbor01@example.com")
    count = throttle.FREE_FAILURES + 10
    with live_app(ctx, **trusted_proxy(ctx)) as live, live.client() as http:
        results = at_once(count, lambda i: login(http, f"wrong-{i}", f"198.51.100.{i + 1}"))
        assert answers(results) == {401: throttle.FREE_FAILURES, 429: count - throttle.FREE_FAILURES}
        # The holder, from an address never seen, waits the first step (30 s), no more.
        holder = login(http, PASSWORD, "192.0.2.77")
        assert holder.status_code == 429 and 0 < int(holder.headers["retry-after"]) <= throttle.FIRST_WAIT
        open_the_wait(ctx, throttle.account_key("harbor01"))
        assert login(http, PASSWORD, "192.0.2.77").status_code == 200
        # The right password ended the streak: the next wrong try costs no wait.
        assert login(http, "wrong-again", "192.0.2.78").status_code == 401
        assert login(http, PASSWORD, "192.0.2.79").status_code == 200
        # However long a stranger goes on, a wait never exceeds MAX_WAIT (15 min).
        with ctx.db.session() as session:
            session.execute(update(RateCounter)
                            .where(RateCounter.key == throttle.delay_key(throttle.account_key("harbor01")))
                            .values(count=500, window_end=int(time.time())))
        assert login(http, "wrong-500", "192.0.2.80").status_code == 401
        capped = login(http, PASSWORD, "192.0.2.81")
        assert capped.status_code == 429 and int(capped.headers["retry-after"]) <= throttle.MAX_WAIT


# --- findings 2 and 13: the staff login -----------------------------------------------------------------


def csrf(http: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/staff/login").text)
    assert found
    return found.group(1)


def staff_login(http: Any, token: str, password: str, address: str | None = None) -> Any:
    headers = {"X-Forwarded-For": address} if address else {}
    return http.post("/staff/login", data={"name": "lin", "password": password, "csrf_token": token},
                     headers=headers, follow_redirects=False)


def test_36_wrong_staff_passwords_at_once_are_counted_exactly(ctx: AppContext) -> None:
    add_staff(ctx)
    count = 36
    with live_app(ctx) as live, live.client() as http:
        token = csrf(http)
        results = at_once(count, lambda i: staff_login(http, token, f"wrong-{i}"))
        assert answers(results) == {401: throttle.PAIR_LIMIT, 429: count - throttle.PAIR_LIMIT}
        assert staff_login(http, token, STAFF_PASSWORD).status_code == 429  # the attacker's address


def test_rotating_addresses_slow_the_staff_login_but_do_not_lock_it(ctx: AppContext) -> None:
    add_staff(ctx)
    count = 36
    with live_app(ctx, **trusted_proxy(ctx)) as live, live.client() as http:
        token = csrf(http)
        results = at_once(count, lambda i: staff_login(http, token, f"wrong-{i}", f"198.51.100.{i + 1}"))
        assert answers(results) == {401: throttle.FREE_FAILURES, 429: count - throttle.FREE_FAILURES}
        waiting = staff_login(http, token, STAFF_PASSWORD, "192.0.2.5")
        assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) <= throttle.FIRST_WAIT
        open_the_wait(ctx, throttle.staff_key("lin"))
        assert staff_login(http, token, STAFF_PASSWORD, "192.0.2.5").status_code == 303


# --- finding 5: staff sessions end server-side ---------------------------------------------------------


def signed_in(ctx: AppContext) -> tuple[TestClient, str]:
    client = TestClient(create_app(ctx))
    response = staff_login(client, csrf(client), STAFF_PASSWORD)
    assert response.status_code == 303
    return client, client.cookies["mf_staff"]


def opens_review(ctx: AppContext, cookie: str) -> bool:
    with TestClient(create_app(ctx)) as other:
        other.cookies.set("mf_staff", cookie)
        return other.get("/review", follow_redirects=False).status_code == 200


def test_staff_logout_ends_a_kept_copy_of_the_cookie(ctx: AppContext) -> None:
    add_staff(ctx)
    client, kept = signed_in(ctx)
    _, elsewhere = signed_in(ctx)  # the same person on another computer
    assert opens_review(ctx, kept) and opens_review(ctx, elsewhere)
    page = client.get("/review").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    assert client.post("/staff/logout", data={"csrf_token": token.group(1)},
                       follow_redirects=False).status_code == 303
    assert not opens_review(ctx, kept) and not opens_review(ctx, elsewhere)
    _, fresh = signed_in(ctx)
    assert opens_review(ctx, fresh)


def test_a_staff_password_change_ends_every_session(ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import sys

    add_staff(ctx)
    _, kept = signed_in(ctx)
    assert opens_review(ctx, kept)
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Another-pass-2025\n"))
    assert main(["staff", "password", "lin", "--password-stdin"]) == 0
    assert "sessions have ended" in capsys.readouterr().out
    assert not opens_review(ctx, kept)


# --- finding 13: logs and /metrics ----------------------------------------------------------------------


def test_the_503_warning_names_the_route_not_the_token(ctx: AppContext, client: TestClient,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    link = mail_link(ctx, add_account(ctx))

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(verification, "reserve_try", down)
    with caplog.at_level(logging.WARNING, logger="mailflow"):
        answer = client.post(link, data={"password": PASSWORD})
    assert answer.status_code == 503
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/verify/{token}" in logged
    token = link.rsplit("/", 1)[1]
    assert token not in logged and token.split(".")[0] not in logged


def test_metrics_in_relay_mode_only_for_this_host_or_the_bearer_token(ctx: AppContext) -> None:
    relay = replace(ctx.settings, smtp=replace(ctx.settings.smtp, mode="relay"))
    app = create_app(replace(ctx, settings=relay))
    outside = TestClient(app, client=("203.0.113.9", 40000))
    local = TestClient(app, client=("127.0.0.1", 40000))
    assert outside.get("/metrics").status_code == 403
    assert local.get("/metrics").status_code == 200
    token = "scrape-" + "k" * 32
    secured = replace(relay, security=replace(relay.security, metrics_token=token))
    app = create_app(replace(ctx, settings=secured))
    outside = TestClient(app, client=("203.0.113.9", 40000))
    local = TestClient(app, client=("127.0.0.1", 40000))
    assert outside.get("/metrics").status_code == 401
    assert local.get("/metrics").status_code == 401  # with a token set, everyone needs it
    assert outside.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = outside.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and "mailflow_outbox_messages" in ok.text
