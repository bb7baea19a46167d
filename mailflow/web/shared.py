"""Shared accounts (共用帳號) on the web: the /shared/register form and API, binding requests, unbinding from
either side, switching the active company, and the /account page listing the logged-in account's
companies with one-click switching.

API routes that act on the session cookie take JSON bodies (or DELETE): a cross-site HTML form can send
neither without a CORS preflight, so they need no CSRF token; the /account page's forms carry one.

The active company (統編) is kept server-side on the shared account's bindings (Binding.active_ubn), not
in the mf_session cookie: the login (POST /api/session) reads it from there, a company that is unbound
stops being active at once, and no second copy can disagree with it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from mailflow.accounts import shared, signups
from mailflow.accounts.login import active_ubn_of, log_in
from mailflow.accounts.rules import ACCOUNT_FIELDS
from mailflow.accounts.shared import BindingError
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import Account, AccountKind
from mailflow.web.applicant import GIVE_AGAIN
from mailflow.web.applicant_auth import (
    clear_session_cookie,
    current_account,
    end_sessions,
    set_session_cookie,
)
from mailflow.web.deps import DbSession, RowId, app_ctx, get_settings
from mailflow.web.pages import render
from mailflow.web.security import CSRF_FIELD, csrf_ok, sign, unsign

router = APIRouter()
AppSettings = Annotated[Settings, Depends(get_settings)]

NOT_LOGGED_IN = "請先登入"
NEEDS_JSON = "請以 JSON 格式送出"
# What a binding request answers, the API and the /account form alike: the form says no more than the API.
BINDING_REQUESTED = "已寄出綁定確認信至該一般帳號的Email,待對方以其密碼確認後即完成綁定"
NO_GENERAL_ACCOUNT = "請輸入要綁定的一般帳號"
# The result page after the registration form: its signed address names the account for a day.
REGISTERED_SALT = "shared-registered"
REGISTERED_MAX_AGE_SECONDS = 24 * 3600
FLAG_LABELS = {
    "suspended": "帳號已停權",
    "not_approved": "帳號未審核通過",
    "unverified": "Email 尚未驗證",
    "undeliverable": "Email 無法送達",
}


# --- helpers ------------------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _refusal(exc: BindingError) -> JSONResponse:
    """A refused binding action in the API's shape; a daily cap's 429 says when to try again."""
    answer = _error(exc.status, exc.message)
    if isinstance(exc, shared.BindingThrottled):
        answer.headers["Retry-After"] = str(exc.retry_after)
    return answer


def _logged_in(request: Request, session: Session) -> Account | None:
    return current_account(request, session)


async def _json_object(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not JSON (or not an object)."""
    if "json" not in request.headers.get("content-type", ""):
        return None
    try:
        data = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


async def _form_fields(request: Request) -> dict[str, str]:
    """Account fields from JSON, multipart or urlencoded bodies; anything else reads as empty."""
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        data = await _json_object(request) or {}
    elif "form" in content_type:
        try:
            data = dict(await request.form())
        except Exception:  # a malformed multipart body is bad input, answered like empty fields
            data = {}
    else:
        data = {}
    return {key: value if isinstance(value, str) else "" for key, value in data.items()}


def session_payload(session: Session, account: Account) -> dict[str, Any]:
    """POST /api/session's fields (the active company by the login's own rule, accounts.login.active_ubn_of),
    the companies with their binding details (accounts.shared.bound_companies)."""
    companies = shared.bound_companies(session, account)
    return {"account": account.account, "kind": account.kind, "companies": companies,
            "active_ubn": active_ubn_of(session, account, companies)}


# --- registering ----------------------------------------------------------------------------------------


def register_shared(
    session: Session, ctx: AppContext, data: dict[str, str], client: str | None
) -> tuple[int, dict[str, Any], Account | None]:
    """mailflow.accounts.shared.register_shared as the API and the form answer it: (status, body,
    account). Raises signups.SignupThrottled."""
    try:
        account = shared.register_shared(session, ctx.db, ctx.settings, data, client)
    except shared.SignupRefused as exc:
        return exc.status, {"errors": exc.errors}, None
    return 201, {"id": account.id, "account": account.account, "status": account.status}, account


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/api/shared-accounts")
async def api_register(request: Request, session: DbSession) -> JSONResponse:
    data = await _form_fields(request)
    try:
        # Hashing the password takes tens of milliseconds: keep it off the event loop.
        status, body, _ = await run_in_threadpool(register_shared, session, app_ctx(request), data,
                                                  _client(request))
    except signups.SignupThrottled as exc:
        field = "email" if exc.reason == "recipient" else "form"
        return JSONResponse({"errors": {field: exc.message}}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})
    return JSONResponse(body, status_code=status)


@router.get("/shared/register")
def register_form(request: Request) -> Response:
    return render(request, "shared_register.html", values={}, errors={}, again={})


def _register_page(request: Request, session: Session, settings: Settings, data: dict[str, str]) -> Response:
    values = {k: data.get(k, "") for k in ACCOUNT_FIELDS if not k.startswith("password")}
    # The passwords never come back into a page: say so next to them.
    again = {k: GIVE_AGAIN[k] for k in ("password", "password_confirm")}
    if not csrf_ok(request, data.get(CSRF_FIELD)):
        return render(request, "shared_register.html", 403, values=values, errors={}, again=again,
                      form_error="表單已過期,請重新送出。")
    try:
        status, body, account = register_shared(session, app_ctx(request), data, _client(request))
    except signups.SignupThrottled as exc:
        page = render(request, "shared_register.html", 429, values=values, errors={}, again=again,
                      form_error=exc.message)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if account is None:
        return render(request, "shared_register.html", status, values=values, errors=body["errors"],
                      again=again)
    # Post/Redirect/Get, like /register: a reload shows the result again instead of posting again.
    done = sign(settings, REGISTERED_SALT, {"id": account.id})
    return RedirectResponse(f"/shared/registered?{urlencode({'r': done})}", 303)


@router.post("/shared/register")
async def register_submit(request: Request, session: DbSession, settings: AppSettings) -> Response:
    data = await _form_fields(request)
    return await run_in_threadpool(_register_page, request, session, settings, data)


@router.get("/shared/registered")
def registered_page(request: Request, session: DbSession, settings: AppSettings, r: str = "") -> Response:
    data = unsign(settings, REGISTERED_SALT, r[:500], REGISTERED_MAX_AGE_SECONDS)
    account_id = data.get("id") if isinstance(data, dict) else None
    account = session.get(Account, account_id) if isinstance(account_id, int) else None
    if account is None:
        return RedirectResponse("/shared/register", 303)
    return render(request, "shared_registered.html", account=account)


# --- bindings -------------------------------------------------------------------------------------------


@router.get("/api/shared-accounts/bindings")
def api_list_bindings(request: Request, session: DbSession) -> JSONResponse:
    account = _logged_in(request, session)
    if account is None:
        return _error(401, NOT_LOGGED_IN)
    rows = [shared.describe_binding(session, b, account) for b in shared.bindings_of(session, account)]
    return JSONResponse({"bindings": rows})


def _general_reference(value: Any) -> str | int | None:
    """The general account as named in the body: its name, or the id POST /api/applications answered,
    as a JSON number or a string of digits. None for anything else (true/false are not numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value
    return None


def _request_binding(
    request: Request, session: Session, settings: Settings, data: dict[str, Any] | None
) -> JSONResponse:
    account = _logged_in(request, session)
    if account is None:
        return _error(401, NOT_LOGGED_IN)
    if data is None:
        return JSONResponse({"errors": {"general_account": NEEDS_JSON}}, status_code=422)
    target = _general_reference(data.get("general_account"))
    if target is None:
        return JSONResponse({"errors": {"general_account": NO_GENERAL_ACCOUNT}}, status_code=422)
    try:
        binding = shared.request_binding(session, settings, account, target, db=app_ctx(request).db)
    except BindingError as exc:
        session.rollback()  # nothing of a refused request stays (its counters are committed apart)
        return _refusal(exc)
    body = shared.describe_binding(session, binding, account)
    body["message"] = BINDING_REQUESTED
    return JSONResponse(body, status_code=202)


@router.post("/api/shared-accounts/bindings")
async def api_request_binding(request: Request, session: DbSession, settings: AppSettings) -> JSONResponse:
    data = await _json_object(request)
    return await run_in_threadpool(_request_binding, request, session, settings, data)


@router.delete("/api/shared-accounts/bindings/{binding_id}")
def api_delete_binding(
    binding_id: RowId, request: Request, session: DbSession, settings: AppSettings
) -> JSONResponse:
    account = _logged_in(request, session)
    if account is None:
        return _error(401, NOT_LOGGED_IN)
    try:
        binding = shared.end_binding(session, settings, binding_id, account)
    except BindingError as exc:
        return _refusal(exc)
    return JSONResponse(shared.describe_binding(session, binding, account))


@router.post("/api/shared-accounts/bindings/{binding_id}/unbind")
def api_unbind(
    binding_id: RowId, request: Request, session: DbSession, settings: AppSettings
) -> JSONResponse:
    # Its application/json content type (required by mailflow.web.limits) proves a same-origin script.
    return api_delete_binding(binding_id, request, session, settings)


# --- switching ------------------------------------------------------------------------------------------


def _switch(request: Request, session: Session, data: dict[str, Any] | None) -> JSONResponse:
    account = _logged_in(request, session)
    if account is None:
        return _error(401, NOT_LOGGED_IN)
    ubn = data.get("ubn") if data else None
    if not isinstance(ubn, str) or not ubn.strip():
        return JSONResponse({"errors": {"ubn": "請輸入要切換的公司統編"}}, status_code=422)
    try:
        shared.switch_company(session, account, ubn)
    except BindingError as exc:
        return _error(exc.status, exc.message)
    return JSONResponse(session_payload(session, account))


@router.post("/api/session/switch")
async def api_switch(request: Request, session: DbSession) -> JSONResponse:
    data = await _json_object(request)
    return await run_in_threadpool(_switch, request, session, data)


# --- the /account page ----------------------------------------------------------------------------------


def account_view(request: Request, session: Session, account: Account, **extra: Any) -> Response:
    companies = shared.bound_companies(session, account)
    bindings = [shared.describe_binding(session, b, account) for b in shared.bindings_of(session, account)]
    return render(request, "account.html", account=account, companies=companies, bindings=bindings,
                  flag_labels=FLAG_LABELS, is_shared=account.kind == AccountKind.SHARED,
                  active_ubn=session_payload(session, account)["active_ubn"], **extra)


def login_view(request: Request, status: int = 401, error: str | None = None, typed: str = "") -> Response:
    return render(request, "account.html", status, account=None, error=error, typed=typed)


@router.get("/account")
def account_page(request: Request, session: DbSession) -> Response:
    account = _logged_in(request, session)
    if account is None:
        return login_view(request)
    notice = PAGE_NOTICES.get(request.query_params.get("done", ""))
    return account_view(request, session, account, notice=notice)


PAGE_NOTICES = {"switched": "已切換公司。", "unbound": "已解除綁定。", "cancelled": "已取消綁定請求。",
                "requested": BINDING_REQUESTED + "。",
                # mailflow.web.selfservice's forms on this page
                "email": "已寄出確認信到新的 Email,請於24小時內點選信中連結並輸入密碼完成變更;"
                         "完成前,通知信仍寄到目前的 Email。",
                "password": "密碼已變更,其他已登入的裝置都已登出;已寄出密碼變更通知到您的 Email。"}


def _page_binding_request(request: Request, session: Session, settings: Settings,
                          form: dict[str, str]) -> Response:
    """The /account form that asks a general account to be bound: the same domain call and the same
    answers as POST /api/shared-accounts/bindings, then back to the page (303) on success."""
    account = _logged_in(request, session)
    if account is None:
        return login_view(request)
    typed = form.get("general_account", "").strip()[:40]

    def again(status: int, error: str) -> Response:  # the page once more, the typed 帳號 kept
        return account_view(request, session, account, error=error, general_typed=typed, status_code=status)

    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return again(403, "表單已過期,請重新操作。")
    if not typed:
        return again(422, NO_GENERAL_ACCOUNT + "。")
    try:
        shared.request_binding(session, settings, account, typed, db=app_ctx(request).db)
    except BindingError as exc:
        session.rollback()
        page = again(exc.status, exc.message)
        if isinstance(exc, shared.BindingThrottled):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return RedirectResponse("/account?done=requested", 303)


@router.post("/account/bindings")
async def account_request_binding(request: Request, session: DbSession, settings: AppSettings) -> Response:
    form = await _form_fields(request)
    return await run_in_threadpool(_page_binding_request, request, session, settings, form)


def _page_action(request: Request, session: Session, settings: Settings, form: dict[str, str],
                 binding_id: int | None) -> Response:
    """A /account form: switch to ``form["ubn"]``, or end ``binding_id``; then back to the page."""
    account = _logged_in(request, session)
    if account is None:
        return login_view(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return account_view(request, session, account, error="表單已過期,請重新操作", status_code=403)
    ubn = form.get("ubn", "").strip()
    try:
        if binding_id is None:
            shared.switch_company(session, account, ubn)
            done = "switched"
        else:
            ended = shared.end_binding(session, settings, binding_id, account)
            done = "unbound" if ended.confirmed_at else "cancelled"
    except BindingError as exc:
        return account_view(request, session, account, error=exc.message, status_code=exc.status)
    return RedirectResponse(f"/account?done={done}", 303)


@router.post("/account/switch")
async def account_switch(request: Request, session: DbSession, settings: AppSettings) -> Response:
    form = await _form_fields(request)
    return await run_in_threadpool(_page_action, request, session, settings, form, None)


@router.post("/account/bindings/{binding_id}/unbind")
async def account_unbind(
    binding_id: RowId, request: Request, session: DbSession, settings: AppSettings
) -> Response:
    form = await _form_fields(request)
    return await run_in_threadpool(_page_action, request, session, settings, form, binding_id)


def _page_login(request: Request, session: Session, settings: Settings, form: dict[str, str]) -> Response:
    """The /account page's own login form (the same gate and throttle as POST /api/session), so the page
    works in a browser without JavaScript."""
    typed = form.get("account", "")[:40]
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return login_view(request, 403, "表單已過期,請重新登入", typed)
    client = request.client.host if request.client else None
    result = log_in(app_ctx(request).db, typed, form.get("password", "")[:1000], client)
    if result.account is None:
        page = login_view(request, result.status, str(result.body.get("error", "")), typed)
        if result.retry_after is not None:
            page.headers["Retry-After"] = str(result.retry_after)
        return page
    response = RedirectResponse("/account", 303)
    set_session_cookie(response, settings, result.account)
    return response


@router.post("/account/login")
async def account_login(request: Request, session: DbSession, settings: AppSettings) -> Response:
    form = await _form_fields(request)
    return await run_in_threadpool(_page_login, request, session, settings, form)


@router.post("/account/logout")
async def account_logout(request: Request, session: DbSession) -> Response:
    form = await _form_fields(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return login_view(request, 403, "表單已過期,請重新操作")
    # Like DELETE /api/session: a kept copy of the cookie must stop working too, not only this one.
    await run_in_threadpool(end_sessions, request, session)
    response = RedirectResponse("/account", 303)
    clear_session_cookie(response)
    return response
