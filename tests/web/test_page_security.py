"""What the web layer adds to every answer (security headers, the CSRF cookie only when a form needs it),
the read-only /verify page built from one query, and password checks kept off the event loop — through
the real app and database."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from mailflow.accounts import login
from mailflow.accounts.tokens import preview_token, preview_token_on_loop
from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.models import VerificationToken
from mailflow.timeutil import now
from mailflow.web.app import create_app
from mailflow.web.loopreads import PostgresLoopReads, SQLiteLoopReads
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


def test_a_token_signed_with_another_key_or_altered_is_400(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    payload, signature = link.rsplit("/", 1)[1].split(".")
    assert client.get(f"/verify/{payload}.{signature[:-2]}AA").status_code == 400
    assert client.get(f"/verify/{payload[:-2]}AA.{signature}").status_code == 400
    assert client.get(link).status_code == 200  # and the real one still opens


def test_password_checks_of_the_async_json_routes_run_off_the_event_loop(
        ctx: AppContext, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    add_account(ctx)
    seen: list[tuple[str, bool]] = []
    real = login.verify_password

    def watching(password_hash: str, password: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((threading.current_thread().name, on_loop))
        return real(password_hash, password)

    monkeypatch.setattr(login, "verify_password", watching)
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


def test_the_page_sees_a_completion_at_once(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    assert client.get(link).status_code == 200
    assert client.post(link, data={"password": PASSWORD}).status_code == 200
    assert client.get(link).status_code == 410  # the read on the event loop is no stale snapshot


def test_reads_on_the_event_loop_can_never_write(ctx: AppContext, client: TestClient) -> None:
    reads = loop_reads_of(client)
    if isinstance(reads, PostgresLoopReads):
        async def delete() -> None:
            async with reads.pool.connection() as connection:
                await connection.execute("DELETE FROM verification_tokens")

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            portal(client).call(delete)
        return
    assert isinstance(reads, SQLiteLoopReads)
    with pytest.raises(OperationalError), reads.engine.connect() as connection:
        connection.execute(text("DELETE FROM verification_tokens"))


def test_a_read_on_the_event_loop_finds_what_the_threadpool_finds(ctx: AppContext,
                                                                   client: TestClient) -> None:
    """Same row, same types (e.g. an aware expiry time) whichever way the page reads its token."""
    token = mail_link(ctx, add_account(ctx)).rsplit("/", 1)[1]
    on_loop = portal(client).call(preview_token_on_loop, loop_reads_of(client), ctx.settings, token)
    assert on_loop == ctx.db.read_once_more(lambda connection: preview_token(connection, ctx.settings, token))
    assert on_loop.expires_at.tzinfo is not None and on_loop.account == "example1234"


def test_the_page_falls_back_to_the_threadpool_when_the_loop_read_fails(
        ctx: AppContext, client: TestClient, tmp_path: Path) -> None:
    link = mail_link(ctx, add_account(ctx))
    if ctx.db.is_postgres:  # a server that does not answer: the pool gives up after POOL_WAIT_SECONDS
        gone = Database("postgresql+psycopg://postgres@127.0.0.1:9/none")
        broken: Any = portal(client).call(PostgresLoopReads.open, gone)
    else:  # a path that is a directory: SQLite cannot open it
        (tmp_path / "not-a-database").mkdir()
        broken = SQLiteLoopReads(Database(f"sqlite:///{tmp_path / 'not-a-database'}"))
    client.app.state.loop_reads = broken  # type: ignore[attr-defined]
    try:
        page = client.get(link)
    finally:
        portal(client).call(broken.close)
    assert page.status_code == 200 and "example1234" in page.text


def portal(client: TestClient) -> Any:
    """The client's event loop (the app's lifespan ran on it), to run the app's async pieces there."""
    return client.portal


def loop_reads_of(client: TestClient) -> Any:
    return client.app.state.loop_reads  # type: ignore[attr-defined]
