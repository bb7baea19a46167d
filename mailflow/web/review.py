"""The reviewer console /review: the queue, an application's page with its document, the decisions and
the audit trail. Reviewers (and admins) only; every form carries the CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from mailflow.accounts import documents, review
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import Application, ApplicationStatus, DocumentStore, StaffRole, StaffUser
from mailflow.web.deps import DbSession, RowId, get_ctx, get_settings
from mailflow.web.pages import render
from mailflow.web.security import csrf_ok
from mailflow.web.staff_auth import require_staff

router = APIRouter()

Reviewer = Annotated[StaffUser, Depends(require_staff(StaffRole.REVIEWER))]
AppSettings = Annotated[Settings, Depends(get_settings)]
Context = Annotated[AppContext, Depends(get_ctx)]

STATUS_FILTERS = {"submitted": "待審核", "approved": "已通過", "rejected": "未通過", "all": "全部"}
INLINE_TYPES = ("application/pdf", "image/jpeg", "image/png")
# The applicant's file, shown in our origin: nothing in it may run script or fetch (a PDF/HTML polyglot
# sniffed as HTML stays inert), yet Chrome's PDF viewer (an embedded plugin) and an image still show, and
# only our own review page may frame it. No `sandbox`: it stops Chrome's PDF viewer; no `plugin-types`:
# browsers dropped it.
DOCUMENT_CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
UNSENT = ("但申請人的 Email 在停止寄送名單中,通知信沒有寄出,申請人不會收到。"
          "已為客服建立待處理項目(寄送永久失敗),請客服與申請人確認或更正 Email 後重寄。")
DONE_NOTICES = {"approved": "已核准,已排入帳號審核通過信(含驗證連結)與公司文件審核通知信。",
                "approved-unsent": "已核准," + UNSENT,
                "rejected-unsent": "已退件,帳號與統編已釋出供重新申請;" + UNSENT,
                "rejected": "已退件,已排入未通過通知信,帳號與統編已釋出供重新申請。",
                "rejected-document": "已退件,已排入未通過通知信與公司文件審核未通過通知信,"
                                     "帳號與統編已釋出供重新申請。"}


def actor_of(staff: StaffUser) -> str:
    return f"staff:{staff.name}"


@router.get("/review")
def queue_page(
    request: Request, staff: Reviewer, session: DbSession,
    status: Annotated[str, Query(max_length=20)] = "submitted",
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    if status not in STATUS_FILTERS:
        status = "submitted"
    result = review.queue(session, None if status == "all" else status, q, page)
    return render(request, "review_queue.html", staff=staff, result=result, status=status, q=q,
                  filters=STATUS_FILTERS, status_label=review.status_label)


def _detail(request: Request, session: Session, staff: StaffUser, application: Application,
            status_code: int = 200, error: str = "", notice: str = "", warn: bool = False) -> Response:
    return render(
        request, "review_application.html", status_code=status_code, staff=staff, app=application,
        account=application.account, document=application.document, trail=review.trail(session, application),
        reasons=review.STANDARD_REASONS, status_label=review.status_label, error=error, notice=notice,
        warn=warn, decidable=application.status == ApplicationStatus.SUBMITTED, inline_types=INLINE_TYPES,
        suppressed=suppression.active_suppression(session, application.account.email),
    )


def _not_found(request: Request, staff: StaffUser, message: str) -> Response:
    return render(request, "review_queue.html", status_code=404, staff=staff, result=None, status="submitted",
                  q="", filters=STATUS_FILTERS, status_label=review.status_label, error=message)


@router.get("/review/applications/{application_id}")
def application_page(request: Request, application_id: RowId, staff: Reviewer, session: DbSession,
                     done: str = "") -> Response:
    try:
        application = review.get_application(session, application_id)
    except review.ReviewError as exc:
        return _not_found(request, staff, exc.message)
    return _detail(request, session, staff, application, notice=DONE_NOTICES.get(done, ""),
                   warn=done.endswith("-unsent"))


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266 with an RFC 5987 UTF-8 name, and an ASCII fallback for old clients."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    fallback = fallback or "document"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


MISSING_FILE = "找不到此申請案的證明文件檔案,請洽系統管理員。"
PURGED = "此申請案已退件逾保存期限,證明文件已依個人資料保護法刪除。"


@router.get("/review/applications/{application_id}/document")
def document_file(request: Request, application_id: RowId, staff: Reviewer, session: DbSession,
                  ctx: Context, download: bool = False) -> Response:
    try:
        application = review.get_application(session, application_id)
    except review.ReviewError as exc:
        return _not_found(request, staff, exc.message)
    document = application.document
    if document.purged_at is not None:
        return _not_found(request, staff, PURGED)
    inline = not download and document.content_type in INLINE_TYPES
    headers = {
        "Content-Disposition": content_disposition("inline" if inline else "attachment",
                                                   document.original_name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": DOCUMENT_CSP,
    }
    if document.stored_in == DocumentStore.DATABASE:
        # Streamed a chunk at a time, each read on its own short query once this handler has returned.
        headers["Content-Length"] = str(document.size)
        return StreamingResponse(documents.read_chunks(ctx.db, document.id, document.size),
                                 media_type=document.content_type, headers=headers)
    folder = ctx.settings.documents_path.resolve()
    path = (folder / document.stored_name).resolve()
    # The stored name is ours, but a path that leaves the folder is refused all the same.
    if folder not in path.parents or not Path(path).is_file():
        return _not_found(request, staff, MISSING_FILE)
    return FileResponse(path, media_type=document.content_type, headers=headers)


def _unsent(session: Session, application: Application) -> bool:
    """The decision's mails went nowhere: the applicant's address is on the suppression list."""
    return suppression.active_suppression(session, application.account.email) is not None


def _decision(request: Request, session: Session, staff: StaffUser, application_id: int, csrf_token: str,
              decide: Callable[[], str]) -> Response:
    """Run one decision behind the CSRF check; a refusal rolls back and re-shows the page with why.
    ``decide`` returns the key of the notice shown after the redirect."""
    try:
        application = review.get_application(session, application_id)
    except review.ReviewError as exc:
        return _not_found(request, staff, exc.message)
    if not csrf_ok(request, csrf_token):
        return _detail(request, session, staff, application, 403, "表單已過期,請重新整理頁面後再送出。")
    try:
        done = decide()
    except review.ReviewError as exc:
        session.rollback()
        return _detail(request, session, staff, review.get_application(session, application_id),
                       exc.status, exc.message)
    return RedirectResponse(f"/review/applications/{application_id}?done={done}", status_code=303)


@router.post("/review/applications/{application_id}/approve")
def approve(
    request: Request, application_id: RowId, staff: Reviewer, session: DbSession, settings: AppSettings,
    note: Annotated[str, Form(max_length=5000)] = "",
    csrf_token: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    def decide() -> str:
        application = review.approve(session, settings, application_id, actor_of(staff), note)
        return "approved-unsent" if _unsent(session, application) else "approved"

    return _decision(request, session, staff, application_id, csrf_token, decide)


@router.post("/review/applications/{application_id}/reject")
def reject(
    request: Request, application_id: RowId, staff: Reviewer, session: DbSession, settings: AppSettings,
    codes: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
    other: Annotated[str, Form(max_length=5000)] = "",
    csrf_token: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    def decide() -> str:
        reasons = review.resolve_reasons(codes, other.splitlines())
        application = review.reject(session, settings, application_id, actor_of(staff), reasons)
        if _unsent(session, application):
            return "rejected-unsent"
        return "rejected-document" if review.document_reasons(reasons) else "rejected"

    return _decision(request, session, staff, application_id, csrf_token, decide)
