"""The applicant session and login throttle over real HTTP (the QA audit's two findings): logging out ends
the session on the server, so a kept copy of the cookie is refused; and failed logins are counted per
(account, client address) with a small limit plus per address with a large one, so one person's typos do
not lock out everyone behind the same NAT, while a password sprayer still stops."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mailflow.accounts import throttle
from mailflow.context import AppContext
from mailflow.models import Account, RateCounter
from mailflow.support.actions import correct_email
from mailflow.timeutil import now
from tests.accounts.test_shared_bindings import ask, confirm, consent_link
from tests.factories import PASSWORD, SHARED_PASSWORD, add_general, add_shared

COMPANY_UBN = "04595257"


def login(client: TestClient, account: str, password: str) -> Any:
    return client.post("/api/session", json={"account": account, "password": password})


def bound_shared_account(ctx: AppContext) -> None:
    """manager01, a verified shared account bound to harbor01's company, as the binding story leaves it."""
    add_general(ctx, "harbor01", COMPANY_UBN)
    shared_id = add_shared(ctx)
    confirm(ctx, consent_link(ctx, ask(ctx, shared_id, "harbor01")), PASSWORD)


def with_cookie(client: TestClient, cookie: str) -> TestClient:
    """Another browser (or an attacker) presenting exactly this mf_session cookie."""
    return TestClient(client.app, cookies={"mf_session": cookie})


def session_works(browser: TestClient) -> tuple[int, int]:
    switched = browser.post("/api/session/switch", json={"ubn": COMPANY_UBN})
    listed = browser.get("/api/shared-accounts/bindings")
    return switched.status_code, listed.status_code


# --- logout ----------------------------------------------------------------------------------------------


def test_a_replayed_cookie_is_refused_after_logout_and_a_new_login_works(ctx: AppContext,
                                                                          client: TestClient) -> None:
    bound_shared_account(ctx)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    old = client.cookies["mf_session"]
    assert session_works(with_cookie(client, old)) == (200, 200)

    assert client.delete("/api/session").status_code == 204
    assert session_works(with_cookie(client, old)) == (401, 401)
    assert session_works(client) == (401, 401)

    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    assert session_works(client) == (200, 200)
    assert session_works(with_cookie(client, old)) == (401, 401)  # a new login does not revive the old one


def test_logout_ends_the_sessions_on_every_device(ctx: AppContext, client: TestClient) -> None:
    bound_shared_account(ctx)
    phone = TestClient(client.app)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    assert login(phone, "manager01", SHARED_PASSWORD).status_code == 200
    assert client.delete("/api/session").status_code == 204
    assert session_works(phone) == (401, 401)


def test_logout_without_a_session_or_with_a_forged_one_changes_nothing(ctx: AppContext,
                                                                       client: TestClient) -> None:
    bound_shared_account(ctx)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    assert TestClient(client.app).delete("/api/session").status_code == 204
    assert with_cookie(client, "not-a-signed-cookie").delete("/api/session").status_code == 204
    assert session_works(client) == (200, 200)


def test_an_email_correction_ends_the_old_sessions(ctx: AppContext, client: TestClient) -> None:
    account_id = add_general(ctx, "harbor01", COMPANY_UBN)
    assert login(client, "harbor01", PASSWORD).status_code == 200
    assert client.get("/api/shared-accounts/bindings").status_code == 200
    with ctx.db.session() as session:
        correct_email(session, ctx.settings, account_id, "harbor01.new@example.com", "support01")
        account = session.get(Account, account_id)
        assert account is not None
        # Re-verified at the new address: the login gate would let the old cookie through again, but its
        # fingerprint names the old address.
        account.email_verified_at, account.email_verified_address = now(), account.email
    assert client.get("/api/shared-accounts/bindings").status_code == 401
    assert login(client, "harbor01", PASSWORD).status_code == 200


def test_a_password_change_ends_the_old_sessions(ctx: AppContext, client: TestClient) -> None:
    from mailflow.passwords import hash_password

    account_id = add_general(ctx, "harbor01", COMPANY_UBN)
    assert login(client, "harbor01", PASSWORD).status_code == 200
    with ctx.db.session() as session:
        session.execute(update(Account).where(Account.id == account_id)
                        .values(password_hash=hash_password("Another1pass")))
    assert client.get("/api/shared-accounts/bindings").status_code == 401


# --- the throttle ----------------------------------------------------------------------------------------


def test_ten_wrong_passwords_lock_that_account_from_that_address_only(ctx: AppContext,
                                                                     client: TestClient) -> None:
    add_general(ctx, "harbor01", COMPANY_UBN)
    add_general(ctx, "harbor02", "12345675")
    tries = [login(client, "harbor01", f"guess-{n}").status_code for n in range(throttle.PAIR_LIMIT)]
    assert tries == [401] * throttle.PAIR_LIMIT

    locked = login(client, "harbor01", PASSWORD)
    assert locked.status_code == 429 and "嘗試次數過多" in locked.json()["error"]
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert "set-cookie" not in locked.headers

    assert login(client, "harbor02", PASSWORD).status_code == 200  # a colleague behind the same NAT
    elsewhere = TestClient(client.app, client=("198.51.100.7", 40000))
    assert login(elsewhere, "harbor01", PASSWORD).status_code == 200  # the holder, from home

    with ctx.db.session() as session:  # the window passes
        session.execute(update(RateCounter).where(RateCounter.key.not_like("delay:%"))
                        .values(window_end=RateCounter.window_end - throttle.WINDOW_SECONDS - 1))
    assert login(client, "harbor01", PASSWORD).status_code == 200


def test_spraying_many_accounts_from_one_address_stops_at_the_address_limit(ctx: AppContext,
                                                                           client: TestClient) -> None:
    add_general(ctx, "harbor01", COMPANY_UBN)
    names = [f"user{n:03d}" for n in range(throttle.CLIENT_LIMIT)]
    answers = [login(client, name, "Summer2024!").status_code for name in names]
    assert answers == [401] * throttle.CLIENT_LIMIT  # each name tried once: no pair limit reached

    sprayed = login(client, "harbor01", PASSWORD)
    assert sprayed.status_code == 429 and int(sprayed.headers["Retry-After"]) > 0
    elsewhere = TestClient(client.app, client=("198.51.100.7", 40000))
    assert login(elsewhere, "harbor01", PASSWORD).status_code == 200


def test_the_wait_after_a_streak_of_failures_grows_to_its_cap() -> None:
    waits = [throttle.wait_after(n) for n in range(throttle.FREE_FAILURES + 8)]
    assert waits[: throttle.FREE_FAILURES] == [0] * throttle.FREE_FAILURES
    assert waits[throttle.FREE_FAILURES:] == [30, 60, 120, 240, 480, 900, 900, 900]


def test_a_successful_login_forgives_only_that_accounts_failures(ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", COMPANY_UBN)
    for n in range(3):
        assert login(client, "harbor01", f"guess-{n}").status_code == 401
    assert login(client, "harbor01", PASSWORD).status_code == 200
    with ctx.db.session() as session:
        counts = dict(session.execute(select(RateCounter.key, RateCounter.count)).tuples().all())
    assert counts[throttle.client_key("testclient")] == 3  # the address still counts towards spraying
    assert counts[throttle.account_client_key("harbor01", "testclient")] == 0
    assert counts[throttle.delay_key(throttle.account_key("harbor01"))] == 0
