"""/support: the customer-service (客服) dashboard for staff with role support (or admin).

Pages: the item list (filters, search, keyset pages, the 30-day chart), an item, an applicant, a raw
received message, and the CSV export of the current filter. Every form posts with a CSRF token, runs one
action from mailflow.support.actions, and answers with a redirect back (or a page saying what was wrong).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import (
    Account,
    InboundMessage,
    StaffRole,
    StaffUser,
    SupportItem,
)
from mailflow.models.base import MAX_ROW_ID
from mailflow.support import actions, chart, queries
from mailflow.support.reasons_zh import KIND_TITLES, SENDER_AUTH_HELP, mail_title
from mailflow.support.received import received_view
from mailflow.timeutil import now, taipei
from mailflow.web.deps import DbSession, RowId, get_ctx, get_settings
from mailflow.web.pages import render
from mailflow.web.security import csrf_ok
from mailflow.web.staff_auth import require_staff

router = APIRouter()

Staff = Annotated[StaffUser, Depends(require_staff(StaffRole.SUPPORT))]
CsrfField = Annotated[str, Form(max_length=400)]
BackField = Annotated[str, Form(max_length=2000)]

DONE_MESSAGES = {
    "assigned": "已指派給您。",
    "noted": "備註已新增。",
    "resolved": "已標記為處理完成。",
    "corrected": "Email 已更正,待寄的郵件已重新排入寄送佇列。",
    "corrected-nomail": "Email 已更正;此帳號目前沒有待寄的郵件。",
    "corrected-suppressed": "Email 已更正,但新的地址在停止寄送名單中,郵件不會寄出。"
                            "請在下方按「解除停止寄送」(確認地址可以收信後),再重寄。",
    "resent": "郵件已重新排入寄送佇列。",
    "lifted": "已解除停止寄送。",
}
CSV_COLUMNS = ("編號", "類別", "建立時間", "帳號", "姓名", "公司名稱", "統一編號", "手機", "Email", "郵件",
               "寄送時間", "原因", "原因說明", "診斷訊息", "摘要", "負責人", "處理時間", "處理人員",
               "寄件者驗證")


def _back(value: str, default: str = "/support") -> str:
    """Only our own /support pages: a posted 'back' never redirects off the dashboard."""
    if not value.startswith("/support") or "//" in value or "\\" in value:
        return default
    return value


def _done(back: str, code: str) -> RedirectResponse:
    glue = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{glue}done={code}", status_code=303)


def _refused(request: Request, staff: StaffUser, message: str, status: int, back: str) -> Response:
    return render(request, "support_error.html", status_code=status, staff=staff, message=message,
                  back=_back(back))


def _csrf_refused(request: Request, staff: StaffUser, back: str) -> Response:
    return _refused(request, staff, "表單已過期或來源不明,請重新整理頁面後再試一次。", 403, back)


@router.get("/support")
def dashboard(request: Request, staff: Staff, session: DbSession) -> Response:
    params = dict(request.query_params)
    flt, errors = queries.parse_filter(params)
    after = queries.Cursor.decode(params.get("after"))
    page = queries.page_items(session, flt, after)
    views = queries.item_views(session, page.items)
    groups = [(kind, title, [v for v in views if v.item.kind == kind]) for kind, title in KIND_TITLES.items()]
    today = taipei(now()).date()
    activity = queries.daily_activity(session, today, 30)
    filter_params = flt.as_params()
    next_url = ("/support?" + urlencode({**filter_params, "after": page.next_cursor.encode()})
                if page.next_cursor else "")
    return render(
        request, "support_list.html", staff=staff, flt=flt, errors=errors, kinds=KIND_TITLES,
        groups=[g for g in groups if g[2]], shown=len(views), total=queries.count_items(session, flt),
        counts=queries.open_counts_by_kind(session), count_cap=queries.COUNT_CAP,
        next_url=next_url, paged=after is not None,
        first_url="/support?" + urlencode(filter_params), export_url="/support/export.csv?" + urlencode(
            filter_params), chart_svg=chart.render_activity_svg(activity), activity=activity,
        done=DONE_MESSAGES.get(params.get("done", ""), ""), self_url=str(request.url.path) + (
            "?" + request.url.query if request.url.query else ""))


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ would run as a formula when the file is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(ctx: AppContext, flt: queries.ItemFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # Excel opens UTF-8 zh-TW correctly only with a BOM
    writer.writerow(CSV_COLUMNS)
    # Its own session: the response streams after the request's session has closed.
    with ctx.db.session() as session:
        batch: list[SupportItem] = []
        for item in queries.iter_items(session, flt):
            batch.append(item)
            if len(batch) == 500:
                yield _write_batch(session, writer, buffer, batch)
                batch = []
        yield _write_batch(session, writer, buffer, batch)


def _write_batch(session: Session, writer: object, buffer: io.StringIO, batch: list[SupportItem]) -> str:
    for view in queries.item_views(session, batch):
        d = view.as_dict()
        row = (d["id"], d["kind_title"], d["created_at"], d["account"], d["name"], d["company_name"],
               d["ubn"], d["mobile"], d["address"], d["mail"], d["mail_time"], d["reason"], d["reason_text"],
               d["diagnostic"], d["summary"], d["assigned_to"], d["resolved_at"], d["resolved_by"],
               d["sender_auth"])
        writer.writerow([_csv_cell(v) for v in row])  # type: ignore[attr-defined]
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@router.get("/support/export.csv")
def export_csv(request: Request, staff: Staff, ctx: Annotated[AppContext, Depends(get_ctx)]) -> Response:
    flt, errors = queries.parse_filter(dict(request.query_params))
    if errors:
        return render(request, "support_error.html", status_code=422, staff=staff,
                      message="篩選條件有誤:" + ";".join(errors.values()), back="/support")
    name = f"support-items-{taipei(now()):%Y%m%d-%H%M}.csv"
    return StreamingResponse(_csv_rows(ctx, flt), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _account_panel(session: Session, account: Account) -> dict[str, Any]:
    """Everything the applicant panel shows (support.queries.account_panel) and how to label it."""
    panel = queries.account_panel(session, account)
    return {**vars(panel), "mail_title": mail_title, "kinds": KIND_TITLES}


@router.get("/support/items/{item_id}")
def item_page(request: Request, item_id: RowId, staff: Staff, session: DbSession, done: str = "") -> Response:
    item = session.get(SupportItem, item_id)
    if item is None:
        return _refused(request, staff, "找不到此客服項目。", 404, "/support")
    view = queries.item_views(session, [item])[0]
    notes = queries.item_notes(session, item)
    inbound = session.get(InboundMessage, item.inbound_id) if item.inbound_id else None
    received = received_view(inbound.raw) if inbound is not None and inbound.raw is not None else None
    panel = _account_panel(session, view.account) if view.account else {}
    return render(request, "support_item.html", staff=staff, view=view, item=item, notes=notes,
                  inbound=inbound, received=received,
                  failed_elsewhere=queries.failed_elsewhere(session, item, view),
                  correction_guarded=view.sender_auth_label if view.sender_unproven else "",
                  sender_auth_help=SENDER_AUTH_HELP.get(item.sender_auth or "", ""),
                  trail=queries.audit_trail(session, item, view.account),
                  done=DONE_MESSAGES.get(done, ""),
                  back=f"/support/items/{item.id}", **panel)


@router.get("/support/accounts/{account_id}")
def account_page(request: Request, account_id: RowId, staff: Staff, session: DbSession,
                 done: str = "") -> Response:
    account = session.get(Account, account_id)
    if account is None:
        return _refused(request, staff, "找不到此帳號。", 404, "/support")
    return render(request, "support_account.html", staff=staff,
                  trail=queries.audit_trail(session, None, account), done=DONE_MESSAGES.get(done, ""),
                  back=f"/support/accounts/{account.id}",
                  **_account_panel(session, account))


@router.get("/support/inbound/{inbound_id}/raw")
def raw_message(request: Request, inbound_id: RowId, staff: Staff, session: DbSession) -> Response:
    message = session.get(InboundMessage, inbound_id)
    if message is None:
        return _refused(request, staff, "找不到此收到的郵件。", 404, "/support")
    if message.raw is None:
        return _refused(request, staff, "此郵件的原始內容已超過保存期限而刪除。", 410, "/support")
    # Shown as text, never as HTML: a received mail is untrusted content.
    return Response(message.raw.decode("utf-8", errors="replace"), media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="inbound-{message.id}.eml"',
                             "Content-Security-Policy": "default-src 'none'; sandbox"})


def _act(request: Request, staff: StaffUser, session: Session, csrf_token: str, back: str, default_back: str,
         action: Callable[[], str]) -> Response:
    """Check the CSRF token, run one action, and redirect back with its done-code; a refused action is
    rolled back and answered with a page that says why."""
    if not csrf_ok(request, csrf_token):
        return _csrf_refused(request, staff, back)
    try:
        code = action()
    except actions.ActionError as exc:
        session.rollback()
        return _refused(request, staff, exc.message, exc.status, back or default_back)
    return _done(_back(back, default_back), code)


@router.post("/support/items/{item_id}/assign")
def assign(request: Request, item_id: RowId, staff: Staff, session: DbSession,
           csrf_token: CsrfField = "", back: BackField = "") -> Response:
    def action() -> str:
        actions.assign_to_me(session, item_id, staff.name)
        return "assigned"

    return _act(request, staff, session, csrf_token, back, f"/support/items/{item_id}", action)


@router.post("/support/items/{item_id}/note")
def note(request: Request, item_id: RowId, staff: Staff, session: DbSession, csrf_token: CsrfField = "",
         back: BackField = "", text: Annotated[str, Form(max_length=20000)] = "") -> Response:
    def action() -> str:
        actions.add_note(session, item_id, staff.name, text)
        return "noted"

    return _act(request, staff, session, csrf_token, back, f"/support/items/{item_id}", action)


@router.post("/support/items/{item_id}/resolve")
def resolve(request: Request, item_id: RowId, staff: Staff, session: DbSession,
            csrf_token: CsrfField = "", back: BackField = "") -> Response:
    def action() -> str:
        actions.resolve(session, item_id, staff.name)
        return "resolved"

    return _act(request, staff, session, csrf_token, back, f"/support/items/{item_id}", action)


@router.post("/support/accounts/{account_id}/email")
def correct_email(request: Request, account_id: RowId, staff: Staff, session: DbSession,
                  settings: Annotated[Settings, Depends(get_settings)], csrf_token: CsrfField = "",
                  back: BackField = "", email: Annotated[str, Form(max_length=1000)] = "",
                  lift_old: Annotated[str, Form(max_length=10)] = "",
                  item_id: Annotated[int | None, Form(ge=1, le=MAX_ROW_ID)] = None) -> Response:
    def action() -> str:
        result = actions.correct_email(session, settings, account_id, email, staff.name,
                                       lift_old=bool(lift_old), item_id=item_id)
        if suppression.active_suppression(session, result.new_address) is not None:
            return "corrected-suppressed"
        return "corrected" if result.mail else "corrected-nomail"

    return _act(request, staff, session, csrf_token, back, f"/support/accounts/{account_id}", action)


@router.post("/support/mails/{outbox_id}/resend")
def resend(request: Request, outbox_id: RowId, staff: Staff, session: DbSession,
           settings: Annotated[Settings, Depends(get_settings)], csrf_token: CsrfField = "",
           back: BackField = "") -> Response:
    def action() -> str:
        actions.resend_mail(session, settings, outbox_id, staff.name)
        return "resent"

    return _act(request, staff, session, csrf_token, back, "/support", action)


@router.post("/support/suppressions/lift")
def lift(request: Request, staff: Staff, session: DbSession, csrf_token: CsrfField = "",
         back: BackField = "", address: Annotated[str, Form(max_length=1000)] = "") -> Response:
    def action() -> str:
        actions.lift_suppression(session, address, staff.name)
        return "lifted"

    return _act(request, staff, session, csrf_token, back, "/support", action)
