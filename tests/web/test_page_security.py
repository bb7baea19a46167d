"""What the web layer adds to every answer (security headers, the CSRF cookie only when a form needs it),
the read-only /verify page built from one query, and password checks kept off the event loop — through
the real app and database. The reads on the event loop are in test_loop_reads.py."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import throttle
from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.models import VerificationToken
from mailflow.timeutil import now
from mailflow.web.app import create_app
from mailflow.web.security import (
    CSRF_COOKIE,
    CSRF_MAX_AGE_SECONDS,
    SECURITY_HEADERS,
    csrf_cookie_header,
    csrf_valid,
    mint_csrf,
)
from tests.factories import PASSWORD, SHARED_PASSWORD, add_account, add_general
from tests.web.test_shared_web import link_token, outbox, register_verified_shared
from tests.web.test_verify import mail_link


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_every_answer_carries_the_security_headers_and_a_routes_own_value_wins(
        ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    answers = [client.get("/healthz"), client.get("/register"), client.get("/no/such/page"),
               client.post("/api/session", json={"account": "nobody", "password": "x"}), client.get(link)]
    assert [a.status_code for a in answers] == [200, 200, 404, 401, 200]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            if not (answer is answers[-1] and name == "Referrer-Policy"):
                assert answer.headers[name] == value, (answer.request.url, name)
    # The verification link is a credential: its page keeps its stricter referrer policy, once.
    assert answers[-1].headers.get_list("referrer-policy") == ["no-referrer"]


def test_a_form_page_mints_one_csrf_cookie_that_matches_its_field_and_keeps_it(client: TestClient) -> None:
    first = client.get("/register")
    cookie = first.cookies.get(CSRF_COOKIE)
    assert cookie and hidden_csrf(first.text) == cookie
    set_cookie = first.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "secure" not in set_cookie
    again = client.get("/register")  # the browser sends the cookie back: the same token, no new cookie
    assert "set-cookie" not in again.headers
    assert hidden_csrf(again.text) == cookie


def test_a_page_without_a_form_sets_no_csrf_cookie(ctx: AppContext, client: TestClient) -> None:
    assert "set-cookie" not in client.get("/healthz").headers
    assert "set-cookie" not in client.get("/verify/not-a-token").headers  # the failure page has no form


def test_a_forged_csrf_cookie_is_replaced_and_refused(client: TestClient) -> None:
    client.cookies.set(CSRF_COOKIE, "forged.value")
    page = client.get("/register")
    fresh = page.cookies.get(CSRF_COOKIE)
    assert fresh and fresh != "forged.value" and hidden_csrf(page.text) == fresh


def test_the_csrf_cookie_is_secure_behind_https(ctx: AppContext, tmp_path: Path) -> None:
    settings = load_settings(None, {"MAILFLOW_DATABASE__URL": ctx.settings.database.url,
                                    "MAILFLOW_HTTP__BASE_URL": "https://hep.example.org",
                                    "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")})
    https_ctx = AppContext.from_settings(settings)
    try:
        with TestClient(create_app(https_ctx)) as browser:
            assert "secure" in browser.get("/register").headers["set-cookie"].lower()
    finally:
        https_ctx.db.dispose()
    assert b"Secure" in csrf_cookie_header("v", secure=True)
    assert b"Secure" not in csrf_cookie_header("v", secure=False)


def test_the_verify_page_names_the_account_and_the_address_masked(ctx: AppContext,
                                                                 client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx, "harbor77", "harbor77@example.com"))
    page = client.get(link)
    assert page.status_code == 200
    assert "harbor77" in page.text and "王小明" in page.text and "h***@example.com" in page.text
    assert "harbor77@example.com" not in page.text


def test_the_binding_page_names_the_shared_account_that_asks(ctx: AppContext, client: TestClient) -> None:
    add_general(ctx, "harbor01", "04595257")
    register_verified_shared(ctx, client)
    logged_in = client.post("/api/session", json={"account": "manager01", "password": SHARED_PASSWORD})
    assert logged_in.status_code == 200
    asked = client.post("/api/shared-accounts/bindings", json={"general_account": "harbor01"})
    assert asked.status_code == 202
    (consent,) = outbox(ctx, "binding-request", "harbor01@example.com")
    page = TestClient(client.app).get(f"/verify/{link_token(consent)}")
    assert page.status_code == 200
    assert "確認共用帳號綁定" in page.text
    assert "manager01" in page.text and "林美玲" in page.text and "harbor01" in page.text
    completed = TestClient(client.app).post(f"/verify/{link_token(consent)}",
                                            data={"password": PASSWORD})
    assert completed.status_code == 200


@pytest.mark.parametrize("change, status", [("used", 410), ("voided", 410), ("expired", 410)])
def test_the_verify_page_refuses_a_closed_token(ctx: AppContext, client: TestClient, change: str,
                                                status: int) -> None:
    link = mail_link(ctx, add_account(ctx))
    with ctx.db.session() as session:
        row = session.scalars(select(VerificationToken)).one()
        if change == "expired":
            row.expires_at = now()
        else:
            setattr(row, f"{change}_at", now())
    page = client.get(link)
    assert page.status_code == status
    assert 'name="password"' not in page.text and page.headers["cache-control"] == "no-store"


def altered(part: str) -> str:
    """``part`` with its first two characters changed, always to others: the first characters of a base64
    run carry whole bits, while the last may only carry padding bits that decoding ignores (replacing the
    last two with "AA" was sometimes no change at all)."""
    swapped = "".join("B" if char == "A" else "A" for char in part[:2])
    assert swapped != part[:2]
    return swapped + part[2:]


def test_a_token_signed_with_another_key_or_altered_is_400(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    payload, signature = link.rsplit("/", 1)[1].split(".")
    assert client.get(f"/verify/{payload}.{altered(signature)}").status_code == 400
    assert client.get(f"/verify/{altered(payload)}.{signature}").status_code == 400
    assert client.get(link).status_code == 200  # and the real one still opens


def test_password_checks_of_the_async_json_routes_run_off_the_event_loop(
        ctx: AppContext, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    add_account(ctx)
    seen: list[tuple[str, bool]] = []
    real = throttle.verify_or_spend

    def watching(password_hash: str | None, password: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return real(password_hash, password)

    monkeypatch.setattr(throttle, "verify_or_spend", watching)
    answer: Any = client.post("/api/session", json={"account": "example1234", "password": PASSWORD})
    assert answer.status_code == 403  # approved but not verified yet: the password was checked
    assert seen and not any(on_loop for _, on_loop in seen)


def test_a_csrf_token_holds_only_with_our_key_and_within_its_age(ctx: AppContext, tmp_path: Path) -> None:
    token = mint_csrf(ctx.settings)
    assert csrf_valid(ctx.settings, token)
    nonce, issued, mac = token.split(".")
    assert not csrf_valid(ctx.settings, f"{nonce}x.{issued}.{mac}")  # altered nonce
    altered = "B" if mac.endswith("A") else "A"  # one time in 64 the signature already ends in "A"
    assert not csrf_valid(ctx.settings, f"{nonce}.{issued}.{mac[:-1]}{altered}")  # altered signature
    assert not csrf_valid(ctx.settings, f"{nonce}.{mac}") and not csrf_valid(ctx.settings, "")
    old = mint_csrf(ctx.settings, at=time.time() - CSRF_MAX_AGE_SECONDS - 60)
    assert not csrf_valid(ctx.settings, old)
    other = load_settings(None, {"MAILFLOW_DATABASE__URL": ctx.settings.database.url,
                                 "MAILFLOW_SECURITY__SECRET_KEY": "another-key-" + "x" * 40,
                                 "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents")})
    assert not csrf_valid(other, token)


def test_a_form_post_with_an_expired_csrf_cookie_is_refused(ctx: AppContext, client: TestClient) -> None:
    old = mint_csrf(ctx.settings, at=time.time() - CSRF_MAX_AGE_SECONDS - 60)
    client.cookies.set(CSRF_COOKIE, old)
    refused = client.post("/verify/resend", data={"account": "example1234", "password": PASSWORD,
                                                  "csrf_token": old})
    assert refused.status_code == 403
