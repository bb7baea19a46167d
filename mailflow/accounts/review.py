"""Reviewing applications: the queue, the maintained list of rejection reasons, and the two decisions.

A decision is one transaction: the application and its account change state, the result mails are queued
and the audit event is written — or nothing happens. The state change is a conditional UPDATE
(``WHERE status = 'submitted'``) so two reviewers (or a double click) cannot both decide one application.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts.verification_mail import send_verification_mail
from mailflow.config import Settings
from mailflow.mail.queue import queue_account_rejected, queue_document_approved, queue_document_rejected
from mailflow.models import (
    Account,
    AccountStatus,
    Application,
    ApplicationStatus,
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    SupportKind,
)
from mailflow.notify.events import application_data, emit_event
from mailflow.refusals import Refused
from mailflow.support.items import open_item
from mailflow.timeutil import now, roc_date

MAX_NOTE = 1000
MAX_REASON = 500
MAX_REASONS = 20

# The maintained list of standard rejection reasons: code -> the text the applicant reads.
STANDARD_REASONS: dict[str, str] = {
    "brc-obsolete": f"「營利事業登記證」自{roc_date(date(2009, 4, 13))}起停止使用,不再作為證明文件,"
                    "請改提出其他最新版本之「商業登記證明文件」",
    "doc-unreadable": "文件模糊無法辨識,請重新掃描或拍攝清晰完整之文件",
    "company-mismatch": "公司名稱與文件不符",
    "ubn-mismatch": "統一編號與文件不符",
    "address-mismatch": "公司地址與文件不符",
    "owner-mismatch": "公司負責人與文件不符",
    "person-name": "姓名須為自然人(帳號使用人)姓名,不可填寫公司名稱",
    "doc-incomplete": "文件不完整,多頁文件請合併為單一檔案後上傳",
    "doc-wrong-type": "上傳之文件非公司證明文件",
    "doc-outdated": "證明文件非最新版本,請提出最新版本之證明文件",
    "duplicate-company": "此公司已有一般帳號,請勿重複申請",
}

# The standard reasons that concern the company document (its kind, legibility, completeness, or the
# company data it fails to prove): a rejection with any of them also sends the document-rejected notice.
# Free-text reasons cannot be told apart, so they go in the account-rejected mail only.
DOCUMENT_REASON_CODES = frozenset({
    "brc-obsolete", "doc-unreadable", "company-mismatch", "ubn-mismatch", "address-mismatch",
    "owner-mismatch", "doc-incomplete", "doc-wrong-type", "doc-outdated",
})
DOCUMENT_REASONS = frozenset(STANDARD_REASONS[code] for code in DOCUMENT_REASON_CODES)


class ReviewError(Refused):
    """A refused review action: ``status`` 404, 409 or 422."""


@dataclass
class QueuePage:
    items: list[Application]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _queue_query(status: str | None, search: str | None) -> Select[Any]:
    query = select(Application).join(Account, Account.id == Application.account_id)
    if status:
        query = query.where(Application.status == status)
    text = (search or "").strip()
    if text:
        like = f"%{text.lower()}%"
        query = query.where(or_(
            func.lower(Account.account).like(like), Application.ubn.like(f"%{text}%"),
            func.lower(Application.company_name).like(like),
        ))
    return query


def queue(session: Session, status: str | None = ApplicationStatus.SUBMITTED, search: str | None = None,
          page: int = 1, per_page: int = 25) -> QueuePage:
    """Applications oldest first, optionally by status and by a search over account, 統編 and name."""
    page = max(1, page)
    query = _queue_query(status, search)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Application.submitted_at, Application.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return QueuePage(list(items), int(total), page, per_page)


def get_application(session: Session, application_id: int) -> Application:
    application = session.get(Application, application_id)
    if application is None:
        raise ReviewError(404, f"查無申請案 {application_id}")
    return application


def trail(session: Session, application: Application) -> list[AuditEvent]:
    """The audit events of an application and of its account, oldest first."""
    return list(session.scalars(
        select(AuditEvent).where(or_(
            (AuditEvent.target_type == "application") & (AuditEvent.target_id == application.id),
            (AuditEvent.target_type == "account") & (AuditEvent.target_id == application.account_id),
        )).order_by(AuditEvent.at, AuditEvent.id)
    ))


def resolve_reasons(codes: list[str], texts: list[str]) -> list[str]:
    """Standard reasons by code, then free-text ones; raises ReviewError(422) for an unknown code, an
    over-long reason or none at all."""
    reasons: list[str] = []
    for code in codes:
        if code not in STANDARD_REASONS:
            raise ReviewError(422, f"未知的退件原因代碼:{code}")
        reasons.append(STANDARD_REASONS[code])
    for text in texts:
        clean = " ".join(text.split())
        if len(clean) > MAX_REASON:
            raise ReviewError(422, f"每項退件原因最多 {MAX_REASON} 字")
        if clean:
            reasons.append(clean)
    reasons = list(dict.fromkeys(reasons))  # the same reason twice reads as a mistake in the mail
    if not reasons:
        raise ReviewError(422, "請至少選擇或填寫一項退件原因")
    if len(reasons) > MAX_REASONS:
        raise ReviewError(422, f"退件原因最多 {MAX_REASONS} 項")
    return reasons


def _decide(session: Session, application: Application, new_status: str, actor: str, **values: Any) -> None:
    """Move a submitted application to ``new_status``; ReviewError(409) when it was decided meanwhile."""
    result = session.execute(
        update(Application)
        .where(Application.id == application.id, Application.status == ApplicationStatus.SUBMITTED)
        .values(status=new_status, decided_at=now(), decided_by=actor, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.refresh(application)
        label = status_label(application.status)
        raise ReviewError(409, f"此申請案已於先前審核({label}),不可重複審核")
    session.refresh(application)


_STATUS_ZH: dict[str, str] = {ApplicationStatus.SUBMITTED: "待審核", ApplicationStatus.APPROVED: "已通過",
              ApplicationStatus.REJECTED: "未通過"}


def status_label(status: str) -> str:
    return _STATUS_ZH.get(status, status)


def approve(session: Session, settings: Settings, application_id: int, actor: str,
            note: str | None = None) -> Application:
    """Approve: the account may verify its address; queues account-approved (with the verification
    link) and document-approved (with the 通過說明)."""
    clean_note = (note or "").strip()
    if len(clean_note) > MAX_NOTE:
        raise ReviewError(422, f"通過說明最多 {MAX_NOTE} 字")
    application = get_application(session, application_id)
    _decide(session, application, ApplicationStatus.APPROVED, actor, approval_note=clean_note or None)
    account = application.account
    account.status = AccountStatus.APPROVED
    account.approved_at = now()
    approval = send_verification_mail(session, settings, account, "account-approved")
    _tell_support_if_unsent(session, application, approval, "核准")
    queue_document_approved(session, settings, account, application, clean_note)
    audit.record(session, actor, "application.approved", "application", application.id,
                 account=account.account, ubn=application.ubn, note=clean_note)
    emit_event(session, "application.approved", account.id, application_data(application, account))
    return application


def _tell_support_if_unsent(session: Session, application: Application, mail: OutboxMessage,
                            decision: str) -> None:
    """A decision's mail to an address on the suppression list is never sent (enqueue marks it
    suppressed): the applicant will not hear of it, so customer service gets an item to phone them."""
    if mail.status != OutboxStatus.SUPPRESSED:
        return
    open_item(session, SupportKind.MAIL_FAILED, account_id=application.account_id,
              application_id=application.id, outbox_id=mail.id, address=mail.to_address,
              reason="suppressed",
              summary=f"申請案已{decision},但申請人的 Email 在停止寄送名單中,通知信沒有寄出;"
                      "請與申請人確認或更正 Email 後重寄。")


def document_reasons(reasons: list[str]) -> list[str]:
    """Those of ``reasons`` that concern the company document, in their given order."""
    return [reason for reason in reasons if reason in DOCUMENT_REASONS]


def _queue_rejection_mails(session: Session, settings: Settings, application: Application,
                           reasons: list[str]) -> list[str]:
    """account-rejected with every reason; document-rejected with the document's reasons when there are
    any (both to the account's address). Returns the document's reasons."""
    account = application.account
    rejection = queue_account_rejected(session, settings, account, application, reasons)
    _tell_support_if_unsent(session, application, rejection, "退件")
    on_document = document_reasons(reasons)
    if on_document:
        queue_document_rejected(session, settings, account, application, on_document)
    return on_document


def reject(session: Session, settings: Settings, application_id: int, actor: str,
           reasons: list[str]) -> Application:
    """Reject with ``reasons`` (already resolved): the account id and the 統編 are freed for a new
    registration; queues account-rejected listing every reason and where to register again, and, when
    some reasons concern the company document, document-rejected listing those."""
    if not reasons:
        raise ReviewError(422, "請至少選擇或填寫一項退件原因")
    application = get_application(session, application_id)
    _decide(session, application, ApplicationStatus.REJECTED, actor, reject_reasons=reasons, ubn_key=None)
    account = application.account
    account.status = AccountStatus.REJECTED
    account.account_key = None
    on_document = _queue_rejection_mails(session, settings, application, reasons)
    audit.record(session, actor, "application.rejected", "application", application.id,
                 account=account.account, ubn=application.ubn, reasons=reasons, document_reasons=on_document)
    emit_event(session, "application.rejected", account.id,
               {**application_data(application, account), "reasons": reasons})
    return application
