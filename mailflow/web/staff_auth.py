"""Staff sign-in for /review and /support: the login form, the signed ``mf_staff`` session cookie,
lockout after repeated failures, and ``require_staff(*roles)`` — the dependency every staff route uses.

The cookie carries the staff id and a fingerprint of the password hash, so changing a password ends every
session of that person; it expires after security.session_ttl_hours.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.accounts import throttle
from mailflow.config import Settings
from mailflow.models import StaffRole, StaffUser
from mailflow.passwords import hash_password, verify_password
from mailflow.timeutil import now
from mailflow.web.deps import DbSession, get_settings
from mailflow.web.pages import render
from mailflow.web.security import bind_csrf_to, csrf_ok, sign, unsign

log = logging.getLogger(__name__)

SESSION_COOKIE = "mf_staff"
SESSION_SALT = "staff-session"
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
CLIENT_LIMIT = 30  # failures per client address in the throttle window, whatever names it tries
ROLE_HOME = {StaffRole.REVIEWER: "/review", StaffRole.SUPPORT: "/support", StaffRole.ADMIN: "/review"}
ROLE_LABEL: dict[str, str] = {StaffRole.REVIEWER: "審核人員", StaffRole.SUPPORT: "客服人員",
                              StaffRole.ADMIN: "系統管理員"}

# Verifying against a fixed hash for unknown names keeps their answer as slow as a known name's.
_DUMMY_HASH = hash_password("not-a-real-password")


class StaffLoginRequired(Exception):
    def __init__(self, next_url: str, api: bool) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.api = api


class StaffForbidden(Exception):
    def __init__(self, staff: StaffUser, roles: tuple[str, ...], api: bool) -> None:
        super().__init__(staff.name)
        # Plain values: the session (and so the ORM row) is gone when the handler renders the page.
        self.name = staff.name
        self.role = staff.role
        self.roles = roles
        self.api = api


@dataclass
class LoginOutcome:
    staff: StaffUser | None
    status: int
    message: str


def password_fingerprint(password_hash: str) -> str:
    """Part of a session cookie: a new password changes it, which ends every older session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def safe_next(value: str | None, default: str = "/review") -> str:
    """Only a relative path on this site: '/x' yes; '//host', '/\\host', 'https://…' and control chars no."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 32 or ch == "\\" for ch in value):
        return default
    return value


def authenticate(session: Session, name: str, password: str, client: str | None) -> LoginOutcome:
    """Check a staff name and password, counting failures; the caller commits either way."""
    keys = [throttle.client_key(client)]
    if throttle.is_throttled(session, keys, limit=CLIENT_LIMIT):
        return LoginOutcome(None, 429, "嘗試次數過多,請 15 分鐘後再試。")
    staff = session.scalar(select(StaffUser).where(func.lower(StaffUser.name) == name.strip().lower()))
    moment = now()
    if staff is not None and staff.locked_until is not None and staff.locked_until > moment:
        verify_password(_DUMMY_HASH, password)
        return LoginOutcome(None, 429, "密碼錯誤次數過多,帳號已暫時鎖定 15 分鐘,請稍後再試。")
    if staff is None or staff.disabled or not verify_password(staff.password_hash, password):
        if staff is None:
            verify_password(_DUMMY_HASH, password)
        throttle.record_failure(session, *keys)
        if staff is not None:
            staff.failed_logins += 1
            if staff.failed_logins >= LOCK_AFTER:
                staff.locked_until = moment + LOCK_FOR
                staff.failed_logins = 0
                log.warning("staff login %s locked for %s after repeated failures", staff.id, LOCK_FOR)
        return LoginOutcome(None, 401, "帳號或密碼錯誤。")
    staff.failed_logins = 0
    staff.locked_until = None
    return LoginOutcome(staff, 200, "")


def set_login_cookie(response: Response, settings: Settings, cookie: str, salt: str, row_id: int,
                     password_hash: str) -> None:
    """A signed session cookie (staff or applicant): HttpOnly, SameSite=Lax, Secure on https, expiring
    after security.session_ttl_hours."""
    response.set_cookie(
        cookie,
        sign(settings, salt, {"id": row_id, "v": password_fingerprint(password_hash)}),
        max_age=int(settings.security.session_ttl_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.http.base_url.startswith("https"),
        path="/",
    )


def read_login_cookie(request: Request, cookie: str, salt: str) -> tuple[int, str] | None:
    """(row id, password fingerprint) from a valid, unexpired session cookie."""
    settings: Settings = request.app.state.ctx.settings
    data = unsign(settings, salt, request.cookies.get(cookie), settings.security.session_ttl_hours * 3600)
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return None
    return data["id"], str(data.get("v"))


def set_session_cookie(response: Response, settings: Settings, staff: StaffUser) -> None:
    set_login_cookie(response, settings, SESSION_COOKIE, SESSION_SALT, staff.id, staff.password_hash)


def current_staff(request: Request, session: Session) -> StaffUser | None:
    found = read_login_cookie(request, SESSION_COOKIE, SESSION_SALT)
    if found is None:
        return None
    staff = session.get(StaffUser, found[0])
    if staff is None or staff.disabled or found[1] != password_fingerprint(staff.password_hash):
        return None
    return staff


def has_role(staff: StaffUser, roles: tuple[str, ...]) -> bool:
    return not roles or staff.role == StaffRole.ADMIN or staff.role in roles


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "/api/" in request.url.path or ("application/json" in accept and "text/html" not in accept)


def require_staff(*roles: str) -> Callable[..., StaffUser]:
    """A dependency: the signed-in StaffUser with one of ``roles`` (admin passes every role). Pages
    without a session redirect to the login form; API calls get 401 JSON; a wrong role gets 403."""

    def dependency(request: Request, session: DbSession) -> StaffUser:
        staff = current_staff(request, session)
        api = _wants_json(request)
        if staff is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise StaffLoginRequired(target, api)
        if not has_role(staff, roles):
            raise StaffForbidden(staff, roles, api)
        return staff

    return dependency


router = APIRouter()


@router.get("/staff/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    return render(request, "staff_login.html", next=safe_next(next, ""), error="", name="")


@router.post("/staff/login")
def login_submit(
    request: Request,
    session: DbSession,
    settings: Annotated[Settings, Depends(get_settings)],
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002 - the form field name
    csrf_token: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return render(request, "staff_login.html", status_code=403, next=safe_next(next, ""), name=name,
                      error="表單已過期或來源不明,請重新整理頁面後再登入。")
    if not name.strip() or not password:
        return render(request, "staff_login.html", status_code=422, next=safe_next(next, ""), name=name,
                      error="請輸入帳號與密碼。")
    client = request.client.host if request.client else None
    outcome = authenticate(session, name, password, client)
    if outcome.staff is None:
        return render(request, "staff_login.html", status_code=outcome.status, next=safe_next(next, ""),
                      name=name, error=outcome.message)
    log.info("staff %s signed in", outcome.staff.id)
    home = ROLE_HOME.get(outcome.staff.role, "/review")
    response = RedirectResponse(safe_next(next, home), status_code=303)
    set_session_cookie(response, settings, outcome.staff)
    return response


@router.post("/staff/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=400)] = "") -> Response:
    if not csrf_ok(request, csrf_token):
        return render(request, "staff_login.html", status_code=403, next="", name="",
                      error="表單已過期或來源不明,請重新整理頁面後再登出。")
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StaffLoginRequired)
    if exc.api:
        return JSONResponse({"error": "請先登入"}, status_code=401)
    return RedirectResponse(f"/staff/login?next={quote(exc.next_url, safe='')}", status_code=303)


def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StaffForbidden)
    if exc.api:
        return JSONResponse({"error": "您的角色無權使用此功能"}, status_code=403)
    needed = "、".join(ROLE_LABEL.get(role, role) for role in exc.roles)
    return render(request, "staff_login.html", status_code=403, next="", name=exc.name, forbidden=True,
                  error=f"您的角色({ROLE_LABEL.get(exc.role, exc.role)})"
                  f"無權使用此頁面,需要:{needed}。")


def install(app: FastAPI) -> None:
    """Mount /staff/login and /staff/logout and turn the two refusals into pages (or JSON for APIs)."""
    app.include_router(router)
    bind_csrf_to(app, SESSION_COOKIE)  # a signed-in staff member's form tokens hold in that session only
    app.add_exception_handler(StaffLoginRequired, _login_required)
    app.add_exception_handler(StaffForbidden, _forbidden)
