"""The applicant's side of registration: the zh-TW form (GET/POST /register, works without JavaScript)
and the API (POST /api/applications). Both hand the same fields to
mailflow.accounts.registration.register_general and answer its refusals field by field.

The request body is capped by mailflow.web.limits (document limit plus room for the text fields) while it
is read, so an oversized upload is answered 413, in these routes' own words, without being spooled to disk
in full.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from mailflow.accounts import signups
from mailflow.accounts.documents import Upload
from mailflow.accounts.registration import (
    AVAILABLE_TEXT,
    AvailabilityRefused,
    RegistrationRefused,
    account_availability,
    refuse_several_documents,
    register_general,
    throttled,
)
from mailflow.accounts.rules import (
    ACCOUNT_FIELDS,
    COMPANY_FIELDS,
    browser_rules,
    document_limit_text,
    message,
)
from mailflow.context import AppContext
from mailflow.web.limits import BodyRefused
from mailflow.web.pages import render
from mailflow.web.security import CSRF_FIELD, csrf_ok, sign, unsign

log = logging.getLogger(__name__)
router = APIRouter()

FORM_FIELDS = ACCOUNT_FIELDS + COMPANY_FIELDS
SECRET_FIELDS = frozenset({"password", "password_confirm"})
SUCCESS_TEXT = "帳號資料已經成功送出,請收取Email!!"
CONFIRM_TEXT = "確定要送出申請?"
BAD_FORM = "表單資料格式不正確,請重新整理頁面後再送出"
CSRF_REFUSED = "表單已逾時或來源無法確認,請確認資料後再送出一次"
# The result page's address is signed, so nobody can make it announce an account that was not registered.
DONE_SALT = "register-done"
# Availability checks of the 帳號 field per client address and window: a clerk who retypes a few times
# never meets it, a script listing account ids is slowed to a crawl.
# What a refused post does not bring back (never echoed into a page), and how the form says so.
GIVE_AGAIN = {"password": "為了安全,密碼不會保留,請再輸入一次。",
              "password_confirm": "請再輸入一次確認密碼。",
              "document": "公司證明文件不會保留,請重新選擇檔案。"}
GIVE_AGAIN_NOTICE = "其他欄位已為您保留;密碼、確認密碼及公司證明文件請重新輸入及選擇。"
DONE_MAX_AGE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    help: str
    type: str = "text"
    autocomplete: str = "off"
    inputmode: str = ""


# The seed's order: 帳號資料 then 公司資料; each help text states the field's rule.
ACCOUNT_SECTION = (
    FormField("account", "帳號", "4–20個英文字母或數字,須以英文字母開頭,例如example1234;"
              "不分大小寫,不可與他人重複。", autocomplete="username"),
    FormField("name", "姓名", "帳號持有人(自然人)的姓名,2–30個字,不可包含數字,也不可填公司名稱,例如王小明。",
              autocomplete="name"),
    FormField("mobile", "手機電話", "09開頭的10位數字,例如0912345678(可含空格或-)。", type="tel",
              autocomplete="tel", inputmode="tel"),
    FormField("email", "Email", "審核結果與驗證信會寄到這個信箱,例如example@gmail.com。", type="email",
              autocomplete="email"),
    FormField("password", "密碼", "至少8個字元,須包含大寫英文字母、小寫英文字母及數字,且不可包含帳號。",
              type="password", autocomplete="new-password"),
    FormField("password_confirm", "確認密碼", "請再輸入一次相同的密碼。", type="password",
              autocomplete="new-password"),
)
COMPANY_SECTION = (
    FormField("ubn", "公司統編", "8位數字的統一編號(須通過檢查碼);政府機關可填10碼機關代碼"
              "(數字及大寫英文字母,以英文字母結尾)。每個統一編號只能有一個一般帳號。"),
    FormField("company_phone", "公司電話", "含區碼的電話號碼,例如02-12345678、(07)521-9000;分機可加在後面,"
              "例如#123、轉123或ext 123。會存成02-12345678#123的格式。沒有市話也可填手機號碼。",
              type="tel", inputmode="tel"),
    FormField("company_name", "公司名稱", "公司完整名稱,2–100個字,例如臺灣港務股份有限公司基隆分公司。",
              autocomplete="organization"),
    FormField("company_address", "公司地址", "完整地址:可加3、5或6碼郵遞區號,須有縣或市及門牌號碼(號),"
              "例如804004高雄市鼓山區蓬萊路10號;可寫「臺」或「台」。", autocomplete="street-address"),
    FormField("company_owner", "公司負責人", "公司負責人(自然人)的姓名,2–30個字,不可包含數字,"
              "也不可填公司名稱;可與姓名相同。"),
)


class BadForm(Exception):
    """The body is not a readable form."""


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def read_form(request: Request) -> FormData:
    """The submitted form; raises BodyRefused(413) for an over-size body (RequestLimits caps it, from
    Content-Length and while it streams, at storage.max_document_bytes plus room for the text fields) and
    BadForm for a body that is no form."""
    try:
        return await request.form(max_files=10, max_fields=100)
    except (MultiPartException, HTTPException) as exc:
        raise BadForm from exc


def form_fields(form: FormData) -> dict[str, str]:
    # A file sent where text is expected counts as missing, which the rules answer per field.
    return {name: value for name in FORM_FIELDS if isinstance(value := form.get(name), str)}


def form_uploads(form: FormData) -> list[Upload]:
    return [Upload(item.filename or "", item.file) for item in form.getlist("document")
            if isinstance(item, UploadFile)]


def submit(ctx: AppContext, fields: dict[str, str], uploads: list[Upload],
           client: str | None) -> dict[str, Any]:
    """Run one registration in its own transaction (called in a worker thread: the work is blocking),
    within the sign-up limits of mailflow.accounts.signups."""
    try:
        signups.admit_client(ctx.db, client)
    except signups.SignupThrottled as exc:
        raise throttled(exc, "form") from None
    if len(uploads) > 1:
        raise refuse_several_documents(fields)
    with ctx.db.session() as session:
        application = register_general(session, ctx.settings, fields, uploads[0] if uploads else None,
                                       admit=lambda address: signups.admit_recipient(ctx.db, address))
        return {"id": application.id, "account": application.account.account, "status": "submitted"}


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def retry_headers(refused: RegistrationRefused) -> dict[str, str]:
    return {"Retry-After": str(refused.retry_after)} if refused.retry_after is not None else {}


def too_large_errors(ctx: AppContext) -> dict[str, str]:
    limit = document_limit_text(ctx.settings.storage.max_document_bytes)
    return {"document": message("document_too_large", size=limit)}


@router.post("/api/applications")
async def api_register(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    try:
        form = await read_form(request)
    except BodyRefused as refused:
        if refused.status != 413:
            raise
        return JSONResponse({"errors": too_large_errors(ctx)}, status_code=413)
    except BadForm:
        return JSONResponse({"errors": {"form": BAD_FORM}}, status_code=400)
    try:
        created = await run_in_threadpool(submit, ctx, form_fields(form), form_uploads(form),
                                          client_of(request))
    except RegistrationRefused as refused:
        return JSONResponse({"errors": refused.errors}, status_code=refused.status,
                            headers=retry_headers(refused))
    finally:
        await form.close()
    return JSONResponse(created, status_code=201)


def render_form(request: Request, status_code: int = 200, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, notice: str = "") -> HTMLResponse:
    """The form; after a refused post (``values`` given) every field keeps what was typed except the
    passwords and the document, which a browser must never get back, and the page says so."""
    settings = _ctx(request).settings
    kept = {name: value for name, value in (values or {}).items() if name not in SECRET_FIELDS}
    again = GIVE_AGAIN if values is not None else {}
    if again:
        notice = f"{notice.rstrip('。')}。{GIVE_AGAIN_NOTICE}" if notice else GIVE_AGAIN_NOTICE
    return render(
        request, "register.html", status_code=status_code,
        sections=(("帳號資料", ACCOUNT_SECTION), ("公司資料", COMPANY_SECTION)),
        values=kept, errors=errors or {}, again=again, notice=notice, confirm_text=CONFIRM_TEXT,
        document_help=f"一個PDF、JPEG或PNG檔,不超過{document_limit_text(settings.storage.max_document_bytes)}"
                      "(依檔案內容判斷)。多頁文件(例如公司登記表)請先合併成一個檔案再上傳;"
                      "重新選擇檔案時,只保留最後一次選擇的檔案。",
        rules=browser_rules(settings.storage.max_document_bytes),
    )


@router.get("/api/account-availability")
async def api_account_availability(request: Request, account: str = "") -> JSONResponse:
    """Whether an account id can be registered, asked as the clerk leaves the 帳號 field
    (mailflow.accounts.registration.account_availability: no more than the registration's own 409 says,
    and limited per client address)."""
    client = request.client.host if request.client else "unknown"
    headers = {"Cache-Control": "no-store"}
    try:
        free = await run_in_threadpool(account_availability, _ctx(request).db, account[:200], client)
    except AvailabilityRefused as refused:
        if refused.retry_after is not None:
            headers["Retry-After"] = str(refused.retry_after)
        body: dict[str, Any] = ({"error": refused.message} if refused.status == 429
                                else {"errors": {"account": refused.message}})
        return JSONResponse(body, status_code=refused.status, headers=headers)
    return JSONResponse({"account": free, "available": True, "message": AVAILABLE_TEXT}, headers=headers)


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request) -> HTMLResponse:
    return render_form(request)


@router.post("/register", response_class=HTMLResponse)
async def register_submit(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        form = await read_form(request)
    except BodyRefused as refused:
        if refused.status != 413:
            raise
        return render_form(request, 413, errors=too_large_errors(ctx))
    except BadForm:
        return render_form(request, 400, notice=BAD_FORM)
    fields = form_fields(form)
    try:
        submitted = form.get(CSRF_FIELD)
        if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
            return render_form(request, 403, values=fields, notice=CSRF_REFUSED)
        created = await run_in_threadpool(submit, ctx, fields, form_uploads(form), client_of(request))
    except RegistrationRefused as refused:
        page = render_form(request, refused.status, values=fields, errors=refused.errors,
                           notice=refused.errors.get("form") or "資料有誤,請依各欄位的說明修正後再送出。")
        page.headers.update(retry_headers(refused))
        return page
    finally:
        await form.close()
    # Post/Redirect/Get: reloading the result page must not send the form again (and then answer
    # 帳號已經存在 to someone who just succeeded).
    done = sign(ctx.settings, DONE_SALT, {"account": created["account"]})
    return RedirectResponse(f"/register/done?{urlencode({'r': done})}", status_code=303)


@router.get("/register/done", response_class=HTMLResponse)
async def register_done(request: Request, r: str = "") -> Response:
    """The result page the form post redirects to; its signed ``r`` names the account just registered."""
    data = unsign(_ctx(request).settings, DONE_SALT, r[:500], DONE_MAX_AGE_SECONDS)
    if not isinstance(data, dict) or not isinstance(data.get("account"), str):
        return RedirectResponse("/register", status_code=303)
    return render(request, "register_done.html", account=data["account"], success_text=SUCCESS_TEXT)
