"""Staff sign-in for /review and /support: the login form, the signed ``mf_staff`` session cookie, and
``require_staff(*roles)`` — the dependency every staff route uses. Who may sign in, under which limits,
and what a role allows is mailflow.staff's; this module translates HTTP.

The cookie carries the staff id and a fingerprint of the password hash, so changing a password ends every
session of that person; it expires after security.session_ttl_hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from mailflow import staff as staff_logins
from mailflow.config import Settings
from mailflow.models import StaffRole, StaffUser
from mailflow.web.deps import DbSession, app_ctx, get_settings
from mailflow.web.pages import render
from mailflow.web.security import bind_csrf_to, csrf_ok
from mailflow.web.sessions import password_fingerprint, read_login_cookie, set_login_cookie

log = logging.getLogger(__name__)

SESSION_COOKIE = "mf_staff"
SESSION_SALT = "staff-session"
ROLE_HOME = {StaffRole.REVIEWER: "/review", StaffRole.SUPPORT: "/support", StaffRole.ADMIN: "/review"}
ROLE_LABEL: dict[str, str] = {StaffRole.REVIEWER: "審核人員", StaffRole.SUPPORT: "客服人員",
                              StaffRole.ADMIN: "系統管理員"}

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


def safe_next(value: str | None, default: str = "/review") -> str:
    """Only a relative path on this site: '/x' yes; '//host', '/\\host', 'https://…' and control chars no."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 32 or ch == "\\" for ch in value):
        return default
    return value


def _session_secret(staff: StaffUser) -> str:
    """What the cookie's fingerprint is made of: a new password or a logout voids every older cookie."""
    return f"{staff.password_hash}|{staff.session_generation}"


def set_session_cookie(response: Response, settings: Settings, staff: StaffUser) -> None:
    set_login_cookie(response, settings, SESSION_COOKIE, SESSION_SALT, staff.id, _session_secret(staff))


def _cookie_staff(request: Request, session: Session) -> StaffUser | None:
    found = read_login_cookie(request, SESSION_COOKIE, SESSION_SALT)
    if found is None:
        return None
    staff = session.get(StaffUser, found[0])
    if staff is None or found[1] != password_fingerprint(_session_secret(staff)):
        return None
    return staff


def current_staff(request: Request, session: Session) -> StaffUser | None:
    staff = _cookie_staff(request, session)
    return None if staff is None or staff.disabled else staff


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
        if not staff_logins.has_role(staff, roles):
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
    outcome = staff_logins.authenticate(app_ctx(request).db, name, password, client)
    if outcome.staff is None:
        page = render(request, "staff_login.html", status_code=outcome.status, next=safe_next(next, ""),
                      name=name, error=outcome.message)
        if outcome.retry_after is not None:
            page.headers["Retry-After"] = str(outcome.retry_after)
        return page
    log.info("staff %s signed in", outcome.staff.id)
    home = ROLE_HOME.get(outcome.staff.role, "/review")
    response = RedirectResponse(safe_next(next, home), status_code=303)
    set_session_cookie(response, settings, outcome.staff)
    return response


@router.post("/staff/logout")
def logout(
    request: Request, session: DbSession, csrf_token: Annotated[str, Form(max_length=400)] = ""
) -> Response:
    """Ends the session server-side, like the applicant's logout: the cookie is cleared, and every copy
    of it (and every other session of this staff member) stops working."""
    if not csrf_ok(request, csrf_token):
        return render(request, "staff_login.html", status_code=403, next="", name="",
                      error="表單已過期或來源不明,請重新整理頁面後再登出。")
    staff = _cookie_staff(request, session)
    if staff is not None:
        staff_logins.end_sessions(staff)
        log.info("staff %s signed out; every session of theirs ended", staff.id)
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
