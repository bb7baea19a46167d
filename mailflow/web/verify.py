"""The applicant's verification and login routes: /verify/{token} (GET shows, POST completes),
/verify/resend and its JSON twin POST /api/verification-mails, and POST/DELETE /api/session."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mailflow import reference
from mailflow.accounts import login, verification
from mailflow.accounts.tokens import (
    MSG_TAMPERED,
    TokenError,
    TokenPreview,
    preview_token,
    preview_token_on_loop,
    preview_token_orm,
    token_id,
)
from mailflow.accounts.verification import VerifyError
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.mail.addresses import mask as mask_address
from mailflow.models import TokenPurpose
from mailflow.web.applicant_auth import clear_session_cookie, end_sessions, set_session_cookie
from mailflow.web.deps import DbSession, app_ctx, get_settings, loop_reads, run_read
from mailflow.web.loopreads import LoopReadFailed
from mailflow.web.pages import render
from mailflow.web.security import csrf_ok

log = logging.getLogger(__name__)
router = APIRouter()

AppSettings = Annotated[Settings, Depends(get_settings)]

# The token is a credential in the URL: keep it out of caches, referrers and search engines.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
RESULT_TITLES = {TokenPurpose.VERIFY_EMAIL: "驗證完成", TokenPurpose.BINDING: "綁定完成",
                 TokenPurpose.EMAIL_CHANGE: "Email 變更完成"}
TITLES = {400: "連結無效", 401: "帳號或密碼錯誤", 403: "無法完成驗證", 409: "Email 已變更",
          410: "連結已失效", 429: "嘗試次數過多"}


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    response = render(request, template, status_code=status_code, **context)
    response.headers.update(PRIVATE_HEADERS)
    return response


def _failure(request: Request, status: int, message: str, purpose: str | None = None,
             title: str | None = None) -> Response:
    return _page(request, "verify_result.html", status, ok=False, status=status,
                 title=title or TITLES.get(status, "無法完成"), message=message, purpose=purpose)


def _binding_context(preview: TokenPreview) -> dict[str, str]:
    if preview.purpose != TokenPurpose.BINDING or preview.shared_account is None:
        return {}
    return {"shared_account": preview.shared_account, "shared_name": preview.shared_name or ""}


# /verify/resend comes before /verify/{token}, so "resend" is never read as a token.
@router.get("/verify/resend")
def resend_form(request: Request, account: str = "") -> Response:
    return _page(request, "verify_resend.html", account=account[:40], error="", sent=False)


@router.post("/verify/resend")
def resend_submit(
    request: Request, settings: AppSettings,
    account: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return _page(request, "verify_resend.html", 403, account=account, sent=False,
                     error="表單已過期,請重新整理頁面後再送出。")
    try:
        message = verification.request_new_mail(app_ctx(request).db, settings, account, password,
                                                _client(request))
    except VerifyError as exc:
        page = _page(request, "verify_resend.html", exc.status, account=account, sent=False,
                     error=exc.message)
        if exc.retry_after is not None:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return _page(request, "verify_resend.html", account=account, sent=True, error="",
                 address=mask_address(message.to_address))


@router.post("/api/verification-mails")
async def resend_api(request: Request, settings: AppSettings) -> JSONResponse:
    data = await _json_object(request)
    if data is None:
        return JSONResponse({"error": "請以 JSON 送出 account 與 password"}, status_code=422)
    try:
        # The password check is argon2: the threadpool, never the event loop.
        message = await run_in_threadpool(verification.request_new_mail, app_ctx(request).db, settings,
                                          data["account"], data["password"], _client(request))
    except VerifyError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
    return JSONResponse({"status": "queued", "to": mask_address(message.to_address)}, status_code=202)


@router.get("/verify/{token}")
async def verify_page(request: Request, token: str) -> Response:
    """Shows whose link this is and asks for the password; never consumes the token (mail scanners and
    link previews open links)."""
    try:
        preview = await _read_preview(request, token)
    except TokenError as exc:
        if exc.reason == "moved":
            ctx = app_ctx(request)
            message = await run_read(verification.moved_answer, ctx.db, ctx.settings, token)
            return _failure(request, exc.status, message, title=TITLES[409])
        return _failure(request, exc.status, exc.message)
    if preview.purpose not in verification.LINK_PURPOSES:  # a reset link has its own page
        return _failure(request, 400, MSG_TAMPERED)
    return _form(request, preview, token)


def _form(request: Request, preview: TokenPreview, token: str, status: int = 200,
          error: str = "") -> Response:
    """The password form for a usable link, with the reason of a wrong try when there was one."""
    account = {"account": preview.account, "name": preview.name}
    return _page(request, "verify_form.html", status, account=account, purpose=preview.purpose,
                 token=token, address=mask_address(preview.address), expires_at=preview.expires_at,
                 error=error, binding=_binding_context(preview))


async def _read_preview(request: Request, token: str) -> TokenPreview:
    """The token's preview, read on the event loop when the app has such reads (see
    mailflow.web.loopreads), else through the threadpool. No ORM session and no DbSession: the page has
    nothing to commit."""
    ctx = app_ctx(request)
    if reference.ON:
        return await run_read(_preview_orm, ctx.db, ctx.settings, token)
    reads = loop_reads(request)
    if reads is not None:
        try:
            return await preview_token_on_loop(reads, ctx.settings, token)
        except LoopReadFailed as exc:
            log.info("verify page: read on the event loop failed (%s), using the threadpool", exc)
    return await run_read(_preview, ctx.db, ctx.settings, token)


def _preview(db: Database, settings: Settings, token: str) -> TokenPreview:
    return db.read_once_more(functools.partial(preview_token, settings=settings, token=token))


def _preview_orm(db: Database, settings: Settings, token: str) -> TokenPreview:
    with db.session() as session:
        return preview_token_orm(session, settings, token)


# No CSRF token here, on purpose: the form posts to a URL holding an unguessable single-use token, and
# completing needs the account's password, so a cross-site post can neither guess the target nor succeed;
# requiring our cookie would only break the contract's plain `password` form post.
@router.post("/verify/{token}")
async def verify_submit(
    request: Request, token: str, settings: AppSettings,
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Complete a link with the account's password (issue 13 finding 0: 20 tries at once on one link
    stalled the whole service on SQLite). The tries of one link are judged one at a time in this
    process, waiting on the event loop, holding no thread and no database connection; each step is a
    short transaction of its own, and none is open while the password is checked."""
    ctx = app_ctx(request)
    key = token_id(settings, token)
    if key is None:
        return _failure(request, 400, MSG_TAMPERED)
    try:
        async with one_at_a_time(key):
            done = await run_in_threadpool(verification.complete_link, ctx.db, settings, token, password,
                                           _client(request))
    except TooManyWaiting:
        return _busy(request)
    except TokenError as exc:
        return _failure(request, exc.status, exc.message)
    except VerifyError as exc:
        log.info("verification refused: %s", exc.reason)
        if exc.reason == "wrong-password":  # the link still works: ask again on the same page
            return await _form_again(request, settings, token, exc)
        page = _failure(request, exc.status, exc.message)
        if exc.retry_after is not None:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return _page(request, "verify_result.html", ok=True, status=200, purpose=done.token.purpose,
                 title=RESULT_TITLES.get(done.token.purpose, "驗證完成"),
                 message="", account=done.account)


class TooManyWaiting(Exception):
    pass


# Tries of one link waiting for their turn in this process; past this many, answer 429 at once.
MAX_WAITING_PER_LINK = 64
_link_turns: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[asyncio.Lock, list[int]]]] = (
    WeakKeyDictionary())


@asynccontextmanager
async def one_at_a_time(key: str) -> AsyncIterator[None]:
    """Hold the turn of link ``key`` on this event loop. Another link's tries never wait for it."""
    loop = asyncio.get_running_loop()
    turns = _link_turns.setdefault(loop, {})
    lock, waiting = turns.setdefault(key, (asyncio.Lock(), [0]))
    if waiting[0] >= MAX_WAITING_PER_LINK:
        raise TooManyWaiting
    waiting[0] += 1
    try:
        async with lock:
            yield
    finally:
        waiting[0] -= 1
        if waiting[0] == 0:
            turns.pop(key, None)


def _busy(request: Request) -> Response:
    page = _failure(request, 429, "此連結正在驗證中,請稍後再試。")
    page.headers["Retry-After"] = "1"
    return page


async def _form_again(request: Request, settings: Settings, token: str, exc: VerifyError) -> Response:
    try:
        preview = await _read_preview(request, token)
    except TokenError:
        return _failure(request, exc.status, exc.message)
    return _form(request, preview, token, exc.status, exc.message)


async def _json_object(request: Request) -> dict[str, str] | None:
    """{"account", "password"} as strings, or None when the body is not that."""
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    account, password = data.get("account"), data.get("password")
    if not isinstance(account, str) or not isinstance(password, str):
        return None
    if len(account) > 200 or len(password) > 1000:
        return None
    return {"account": account, "password": password}


@router.post("/api/session")
async def create_session(request: Request, settings: AppSettings) -> JSONResponse:
    data = await _json_object(request)
    if data is None:
        return JSONResponse({"error": "請以 JSON 送出 account 與 password"}, status_code=422)
    # argon2: off the event loop; log_in holds a database connection only for its short transactions.
    result = await run_in_threadpool(login.log_in, app_ctx(request).db, data["account"], data["password"],
                                     _client(request))
    response = JSONResponse(result.body, status_code=result.status)
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(result.retry_after)
    if result.account is not None:
        set_session_cookie(response, settings, result.account)
    return response


@router.delete("/api/session")
def end_session(request: Request, session: DbSession) -> Response:
    """204 whether or not a session came with it; a valid one is revoked server-side (see end_sessions)."""
    end_sessions(request, session)
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response
