"""Self-service on the web (issue 14, CONTRACT.md "Self-service"): 忘記密碼 (GET/POST /password/forgot,
POST /api/password-resets, GET/POST /password/reset/{token}), 忘記帳號 (GET/POST /account/forgot,
POST /api/account-reminders), and on the signed-in /account page 變更 Email (POST /account/email,
POST /api/account/email) and 變更密碼 (POST /account/password, POST /api/account/password). The rules
are mailflow.accounts.selfservice's; these routes only read requests and word the answers.

No enumeration: a reset or reminder request is answered (202) once its client address is counted, and
only then, after the answer has gone out, is the account looked up and mailed (a background task). The
answer and its timing are therefore the same for an unknown 帳號, a pending or suppressed account and
one that gets a mail; only the per-client limit (429) can refuse, and it says nothing about accounts.

The reset form posts to a URL holding an unguessable single-use token and takes no cookie, like
/verify/{token}: a cross-site post can neither guess the target nor gain anything. The other forms carry
the CSRF token; the JSON routes take only application/json (mailflow.web.limits), their CSRF defence.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mailflow.accounts import selfservice
from mailflow.accounts.selfservice import SelfServiceRefused
from mailflow.accounts.tokens import TokenError
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail.addresses import mask
from mailflow.models import Account
from mailflow.web.applicant_auth import clear_session_cookie, current_account, set_session_cookie
from mailflow.web.deps import DbSession, app_ctx, get_settings
from mailflow.web.pages import render
from mailflow.web.security import CSRF_FIELD, csrf_ok
from mailflow.web.shared import account_view, login_view

log = logging.getLogger(__name__)
router = APIRouter()
AppSettings = Annotated[Settings, Depends(get_settings)]

ACCEPTED_BODY = {"status": "accepted"}
# The reset link is a credential in the URL: keep it out of caches, referrers and search engines.
def _body(required: list[str], **fields: str) -> dict[str, Any]:
    """An OpenAPI request body of string fields (each with its description), for /api/docs."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required,
        "properties": {name: {"type": "string", "description": text} for name, text in fields.items()}}}}}}


RESET_BODY = _body([], account="a 帳號 (or give email)", email="an address some account verified")
REMINDER_BODY = _body(["email"], email="the address the 帳號 are mailed to, if some account verified it")
EMAIL_BODY = _body(["email", "password"], email="the new address", password="the current password")
PASSWORD_BODY = _body(["current_password", "new_password"], current_password="the current password",
                      new_password="the registration's rules")
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
FORM_EXPIRED = "表單已過期,請重新整理頁面後再送出。"
NEED_ACCOUNT = "請輸入帳號或Email。"
NEED_EMAIL = "請輸入Email。"
NOT_LOGGED_IN = "請先登入"
NEEDS_JSON = "請以 JSON 格式送出"


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


R = TypeVar("R", bound=Response)


def _retry(response: R, refused: SelfServiceRefused) -> R:
    if refused.retry_after is not None:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _text(data: dict[str, Any], key: str, limit: int = 320) -> str:
    value = data.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # a body that is no form reads as an empty one: every field is then missing
        return {}
    return {key: value for key, value in form.items() if isinstance(value, str)}


# --- the requests that must not tell anything: reset and reminder ---------------------------------------


def _later(ctx: AppContext, work: Callable[..., Any], *args: Any) -> BackgroundTask:
    """``work(db, settings, *args)`` after the answer has gone out: the lookup and the mail take no part in
    the answer's timing."""

    def run() -> None:
        try:
            work(ctx.db, ctx.settings, *args)
        except Exception:  # after the answer: nobody to tell but the log
            log.exception("self-service request %s failed", getattr(work, "__name__", work))

    return BackgroundTask(run)


def _reset(ctx: AppContext, account: str, email: str, client: str | None) -> BackgroundTask:
    return _later(ctx, functools.partial(selfservice.request_password_reset, account=account, email=email,
                                         client=client))


def _reminder(ctx: AppContext, email: str, client: str | None) -> BackgroundTask:
    return _later(ctx, selfservice.send_account_reminder, email, client)


def _split(typed: str, email: str = "") -> tuple[str, str]:
    """(account, email) from what was typed: an @ makes it an address."""
    if email:
        return "", email
    return ("", typed) if "@" in typed else (typed, "")


async def _accept_api(request: Request, then: BackgroundTask) -> JSONResponse:
    """202 once the client is counted (429 past its limit); ``then`` runs after the answer."""
    try:
        await run_in_threadpool(selfservice.admit_client, app_ctx(request).db, _client(request))
    except SelfServiceRefused as exc:
        return _retry(JSONResponse({"error": exc.message}, status_code=429), exc)
    return JSONResponse(ACCEPTED_BODY, status_code=202, background=then)


async def _accept_form(request: Request, form: dict[str, str], template: str, typed: str, missing: str,
                       accepted: str, then: BackgroundTask | None) -> Response:
    """The form's answer: 403 without its CSRF token, 422 with nothing typed (``then`` None), 429 past
    the client's limit, else 202 with ``accepted`` and ``then`` after the answer."""
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return render(request, template, 403, typed=typed, sent=False, error=FORM_EXPIRED)
    if then is None:
        return render(request, template, 422, typed="", sent=False, error=missing)
    try:
        await run_in_threadpool(selfservice.admit_client, app_ctx(request).db, _client(request))
    except SelfServiceRefused as exc:
        return _retry(render(request, template, 429, typed=typed, sent=False, error=exc.message), exc)
    page = render(request, template, 202, typed="", sent=True, error="", message=accepted)
    page.background = then
    return page


@router.post("/api/password-resets", status_code=202, openapi_extra=RESET_BODY)
async def api_password_resets(request: Request) -> JSONResponse:
    data = await _json(request) or {}
    account, email = _split(_text(data, "account", 200), _text(data, "email"))
    if not account and not email:
        return JSONResponse({"errors": {"account": NEED_ACCOUNT}}, status_code=422)
    return await _accept_api(request, _reset(app_ctx(request), account, email, _client(request)))


@router.get("/password/forgot")
def forgot_page(request: Request, account: str = "") -> Response:
    return render(request, "password_forgot.html", typed=account[:40], sent=False, error="")


@router.post("/password/forgot")
async def forgot_submit(request: Request) -> Response:
    form = await _form(request)
    typed = form.get("account", "").strip()[:200]
    account, email = _split(typed, form.get("email", "").strip()[:320])
    then = _reset(app_ctx(request), account, email, _client(request)) if account or email else None
    return await _accept_form(request, form, "password_forgot.html", typed, NEED_ACCOUNT,
                              selfservice.ACCEPTED, then)


@router.post("/api/account-reminders", status_code=202, openapi_extra=REMINDER_BODY)
async def api_account_reminders(request: Request) -> JSONResponse:
    email = _text(await _json(request) or {}, "email")
    if not email:
        return JSONResponse({"errors": {"email": NEED_EMAIL}}, status_code=422)
    return await _accept_api(request, _reminder(app_ctx(request), email, _client(request)))


@router.get("/account/forgot")
def reminder_page(request: Request) -> Response:
    return render(request, "account_forgot.html", typed="", sent=False, error="")


@router.post("/account/forgot")
async def reminder_submit(request: Request) -> Response:
    form = await _form(request)
    email = form.get("email", "").strip()[:320]
    then = _reminder(app_ctx(request), email, _client(request)) if email else None
    return await _accept_form(request, form, "account_forgot.html", email, NEED_EMAIL,
                              selfservice.REMINDER_ACCEPTED, then)


# --- the reset link -------------------------------------------------------------------------------------


def _reset_page(request: Request, status: int = 200, **context: Any) -> Response:
    page = render(request, "password_reset.html", status, **context)
    page.headers.update(PRIVATE_HEADERS)
    return page


def _signed_in(request: Request, session: Session) -> int | None:
    account = current_account(request, session)
    return account.id if account is not None else None


@router.get("/password/reset/{token}")
def reset_page(request: Request, token: str, session: DbSession, settings: AppSettings) -> Response:
    """The new-password form; never consumes the link (mail scanners and link previews open links)."""
    try:
        link = selfservice.preview_reset(session, settings, token[:2048], _signed_in(request, session))
    except TokenError as exc:
        return _reset_page(request, exc.status, state="dead", error=exc.message)
    return _reset_page(request, state="form", link=link, token=token, errors={}, error="")


@router.post("/password/reset/{token}")
async def reset_submit(request: Request, token: str, session: DbSession, settings: AppSettings) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_reset_submit, request, session, settings, token[:2048], form)


def _reset_submit(request: Request, session: Session, settings: Settings, token: str,
           form: dict[str, str]) -> Response:
    try:
        account = selfservice.reset_password(session, settings, token, form.get("password", "")[:1000],
                                             form.get("password_confirm", "")[:1000],
                                             _signed_in(request, session))
    except TokenError as exc:
        return _reset_page(request, exc.status, state="dead", error=exc.message)
    except SelfServiceRefused as exc:
        link = selfservice.preview_reset(session, settings, token, None)
        return _reset_page(request, exc.status, state="form", link=link, token=token, errors=exc.errors,
                           error="新密碼不符合規則,請依說明修正後再送出。")
    page = _reset_page(request, state="done", account=account.account)
    clear_session_cookie(page)  # every session ended; this browser signs in again with the new password
    return page


# --- changes on /account (signed in) --------------------------------------------------------------------


def _account(request: Request, session: Session) -> Account | None:
    return current_account(request, session)


def _api_email(request: Request, session: Session, data: dict[str, Any] | None) -> JSONResponse:
    account = _account(request, session)
    if account is None:
        return JSONResponse({"error": NOT_LOGGED_IN}, status_code=401)
    if data is None:
        return JSONResponse({"errors": {"email": NEEDS_JSON}}, status_code=422)
    ctx = app_ctx(request)
    try:
        message = selfservice.request_email_change(session, ctx.settings, account, _text(data, "email"),
                                                   _text(data, "password", 1000), _client(request))
    except SelfServiceRefused as exc:
        body: dict[str, Any] = {"errors": exc.errors} if exc.status == 422 else {"error": exc.message}
        return _retry(JSONResponse(body, status_code=exc.status), exc)
    return JSONResponse({"status": "accepted", "to": mask(message.to_address)}, status_code=202)


@router.post("/api/account/email", status_code=202, openapi_extra=EMAIL_BODY)
async def api_account_email(request: Request, session: DbSession) -> JSONResponse:
    data = await _json(request)
    return await run_in_threadpool(_api_email, request, session, data)


def _api_password(request: Request, session: Session, data: dict[str, Any] | None) -> JSONResponse:
    account = _account(request, session)
    if account is None:
        return JSONResponse({"error": NOT_LOGGED_IN}, status_code=401)
    if data is None:
        return JSONResponse({"errors": {"new_password": NEEDS_JSON}}, status_code=422)
    settings = app_ctx(request).settings
    new = data.get("new_password") if isinstance(data.get("new_password"), str) else ""
    try:
        selfservice.change_password(session, settings, account, _text(data, "current_password", 1000),
                                    str(new)[:1000], str(new)[:1000], _client(request))
    except SelfServiceRefused as exc:
        errors = {"new_password" if key == "password" else key: text for key, text in exc.errors.items()}
        body: dict[str, Any] = {"errors": errors} if exc.status == 422 else {"error": exc.message}
        return _retry(JSONResponse(body, status_code=exc.status), exc)
    response = JSONResponse({"status": "changed"})
    set_session_cookie(response, settings, account)  # this session goes on; every other one ended
    return response


@router.post("/api/account/password", openapi_extra=PASSWORD_BODY)
async def api_account_password(request: Request, session: DbSession) -> JSONResponse:
    data = await _json(request)
    return await run_in_threadpool(_api_password, request, session, data)


def _page_change(request: Request, session: Session, form: dict[str, str], what: str) -> Response:
    account = _account(request, session)
    if account is None:
        return login_view(request)
    ctx = app_ctx(request)
    typed = form.get("email", "").strip()[:320]

    def again(status: int, error: str, errors: dict[str, str] | None = None) -> Response:
        session.rollback()  # a refused change leaves nothing but its counted failure (below)
        return account_view(request, session, account, status_code=status, error=error,
                             change_errors=errors or {}, email_typed=typed, open_form=what)

    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return again(403, "表單已過期,請重新操作。")
    try:
        if what == "email":
            message = selfservice.request_email_change(session, ctx.settings, account, typed,
                                                       form.get("password", "")[:1000], _client(request))
        else:
            selfservice.change_password(session, ctx.settings, account,
                                        form.get("current_password", "")[:1000],
                                        form.get("new_password", "")[:1000],
                                        form.get("new_password_confirm", "")[:1000], _client(request))
    except SelfServiceRefused as exc:
        if exc.reason == "wrong-password":
            session.commit()  # the failure counts towards the login throttle
        page = again(exc.status, exc.message, exc.errors)
        return _retry(page, exc)
    if what == "email":
        log.info("account %s asked to change its address (outbox %s)", account.id, message.id)
        return RedirectResponse("/account?done=email", 303)
    response = RedirectResponse("/account?done=password", 303)
    set_session_cookie(response, ctx.settings, account)  # this browser stays signed in, no other one
    return response


@router.post("/account/email")
async def account_email(request: Request, session: DbSession) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_page_change, request, session, form, "email")


@router.post("/account/password")
async def account_password(request: Request, session: DbSession) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_page_change, request, session, form, "password")
