"""The reviewer's side: staff sign-in (CSRF, lockout, roles), `mailflow staff add`, and /review."""

from __future__ import annotations

import io
import sys

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import throttle
from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.models import StaffUser
from mailflow.passwords import verify_password
from tests.factories import STAFF_PASSWORD, add_staff, csrf_of, staff_login


def test_review_redirects_to_login_and_back_then_back(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    first = client.get("/review?status=approved", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/staff/login?next=%2Freview%3Fstatus%3Dapproved"
    answer = staff_login(client, next_url="/review?status=approved")
    assert answer.status_code == 303 and answer.headers["location"] == "/review?status=approved"
    cookie = answer.headers["set-cookie"]
    assert "mf_staff=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert client.get("/review").status_code == 200


def test_next_only_accepts_relative_paths_on_this_site(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        answer = staff_login(client, next_url=evil)
        assert answer.status_code == 303 and answer.headers["location"] == "/review", evil


def test_login_without_the_csrf_token_is_refused(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    answer = client.post("/staff/login", data={"name": "lin", "password": STAFF_PASSWORD},
                         follow_redirects=False)
    assert answer.status_code == 403 and "mf_staff" not in answer.headers.get("set-cookie", "")


def test_wrong_passwords_stop_the_guessing_address_not_the_staff_member(ctx: AppContext,
                                                                        client: TestClient) -> None:
    add_staff(ctx)
    for _ in range(throttle.PAIR_LIMIT):
        assert staff_login(client, password="wrong-password").status_code == 401
    stopped = staff_login(client)
    assert stopped.status_code == 429 and "嘗試次數過多" in stopped.text
    assert int(stopped.headers["Retry-After"]) > 0
    # The staff member at their own desk is not locked out by what another address tried.
    desk = TestClient(client.app, client=("198.51.100.20", 40000))
    assert staff_login(desk).status_code == 303


def test_unknown_name_and_wrong_password_look_the_same(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    unknown = staff_login(client, name="nobody")
    wrong = staff_login(client, password="wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    assert "帳號或密碼錯誤" in unknown.text and "帳號或密碼錯誤" in wrong.text


def test_a_support_login_gets_403_on_review_and_admin_passes(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx, "chen", "support")
    add_staff(ctx, "boss", "admin")
    staff_login(client, "chen")
    refused = client.get("/review", follow_redirects=False)
    assert refused.status_code == 403 and "無權使用" in refused.text
    client.cookies.clear()
    staff_login(client, "boss")
    assert client.get("/review").status_code == 200


def test_logout_ends_the_session(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    staff_login(client)
    token = csrf_of(client, "/review")
    assert client.post("/staff/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/review", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_not_a_login(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx)
    client.cookies.set("mf_staff", "eyJpZCI6MX0.forged.signature")
    assert client.get("/review", follow_redirects=False).status_code == 303


def test_staff_add_from_the_command_line(ctx: AppContext, db_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", db_url)

    def staff_add(name: str, role: str, password: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{password}\n"))
        return main(["staff", "add", name, "--role", role, "--password-stdin"])

    assert staff_add("wu", "reviewer", STAFF_PASSWORD) == 0
    assert staff_add("WU", "admin", STAFF_PASSWORD) == 1
    assert "already exists" in capsys.readouterr().err
    assert staff_add("li", "admin", "short") == 2
    with ctx.db.session() as session:
        staff = session.scalars(select(StaffUser)).all()
        assert [(s.name, s.role) for s in staff] == [("wu", "reviewer")]
        assert verify_password(staff[0].password_hash, STAFF_PASSWORD)
