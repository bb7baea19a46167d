"""What customer service does about an item: assign it, note it, resolve it, correct an applicant's address
after a phone call, re-send a mail, lift a suppression. Each action runs in the caller's transaction and
writes its audit event (actor "staff:<name>") there, so the change and its record commit together.

Bad input raises ActionError with a zh-TW message and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts import selfservice
from mailflow.accounts.lookup import account_of_mail, latest_application
from mailflow.accounts.rules import check_field
from mailflow.accounts.tokens import void_tokens, void_tokens_for_address
from mailflow.accounts.verification_mail import send_verification_mail
from mailflow.config import Settings
from mailflow.mail import addresses, suppression
from mailflow.mail.catalog import NOT_RESENDABLE, RECOVERY_TEMPLATES, VERIFICATION_TEMPLATES
from mailflow.mail.queue import queue_copy, queue_registration_received
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    ApplicationStatus,
    OutboxMessage,
    SupportItem,
    SupportNote,
    TokenPurpose,
)
from mailflow.notify.events import emit_event
from mailflow.refusals import Refused
from mailflow.timeutil import now

NOTE_MAX_CHARS = 4000


class ActionError(Refused):
    """A refused action: ``message`` is for the staff member (zh-TW), ``status`` for HTTP."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(status, message)


def actor(staff_name: str) -> str:
    return f"staff:{staff_name}"


def get_item(session: Session, item_id: int) -> SupportItem:
    item = session.get(SupportItem, item_id)
    if item is None:
        raise ActionError("找不到此客服項目。", 404)
    return item


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise ActionError("找不到此帳號。", 404)
    return account


def assign_to_me(session: Session, item_id: int, staff_name: str) -> SupportItem:
    item = get_item(session, item_id)
    previous = item.assigned_to
    item.assigned_to = staff_name
    audit.record(session, actor(staff_name), "support_item_assigned", "support_item", item.id,
                 previous=previous)
    return item


def add_note(session: Session, item_id: int, staff_name: str, text: str) -> SupportNote:
    item = get_item(session, item_id)
    text = (text or "").strip()
    if not text:
        raise ActionError("請輸入備註內容。")
    if len(text) > NOTE_MAX_CHARS:
        raise ActionError(f"備註最多 {NOTE_MAX_CHARS} 字。")
    note = SupportNote(item_id=item.id, author=staff_name, text=text)
    session.add(note)
    session.flush()
    audit.record(session, actor(staff_name), "support_note_added", "support_item", item.id, note_id=note.id)
    return note


def resolve(session: Session, item_id: int, staff_name: str) -> SupportItem:
    item = get_item(session, item_id)
    if item.resolved_at is not None:
        raise ActionError("此項目已經處理完成。", 409)
    item.resolved_at = now()
    item.resolved_by = staff_name
    audit.record(session, actor(staff_name), "support_item_resolved", "support_item", item.id)
    return item


def lift_suppression(session: Session, address: str, staff_name: str) -> int:
    address = (address or "").strip()
    if not address:
        raise ActionError("請指定要解除的 Email 地址。")
    lifted = suppression.lift(session, address, actor(staff_name))
    if not lifted:
        raise ActionError("此地址目前不在停止寄送名單中。", 409)
    return lifted


def pending_mail(session: Session, settings: Settings, account: Account) -> OutboxMessage | None:
    """Queue, to the account's current address, the mail the applicant is waiting for: the verification
    link once approved (general, or a shared account awaiting its verification), else the registration
    notice while the application is under review. None when nothing is pending."""
    if account.is_verified or account.status == AccountStatus.REJECTED:
        return None
    application = latest_application(session, account.id)
    approved = application is not None and application.status == ApplicationStatus.APPROVED
    if account.kind == AccountKind.SHARED or approved:
        return send_verification_mail(session, settings, account, "account-approved")
    if application is not None and application.status == ApplicationStatus.SUBMITTED:
        return queue_registration_received(session, settings, account, application)
    return None


@dataclass
class Correction:
    account: Account
    old_address: str
    new_address: str
    lifted: int
    voided: int
    mail: OutboxMessage | None


def correct_email(session: Session, settings: Settings, account_id: int, new_address: str, staff_name: str,
                  *, lift_old: bool = False, item_id: int | None = None) -> Correction:
    """The applicant gave a new address by phone: store it, void every token bound to the old address,
    optionally lift the old address's suppression, clear 'Email 無法送達', and re-send the pending mail."""
    account = get_account(session, account_id)
    address, error = check_field("email", new_address)
    if error:
        raise ActionError(error)
    if addresses.key(address) == account.email_key:
        raise ActionError("新的 Email 與目前的 Email 相同。")
    if item_id is not None and get_item(session, item_id).account_id != account.id:
        raise ActionError("此客服項目不屬於這個帳號。")
    old = account.email
    # Links sent to the old address die, and so does a pending Email change the holder asked for.
    voided = (void_tokens_for_address(session, account.id, old)
              + void_tokens(session, account.id, TokenPurpose.EMAIL_CHANGE))
    lifted = suppression.lift(session, old, actor(staff_name)) if lift_old else 0
    account.email = address
    account.email_key = addresses.key(address)
    account.email_undeliverable = False
    session.flush()
    mail = pending_mail(session, settings, account)
    emit_event(session, "account.email_changed", account.id, {"account": account.account, "by": "support"})
    audit.record(session, actor(staff_name), "account_email_corrected", "account", account.id,
                 old_address=old, new_address=address, lifted_old_suppression=lifted, voided_tokens=voided,
                 resent_outbox_id=mail.id if mail else None, item_id=item_id)
    return Correction(account, old, address, lifted, voided, mail)


def suppressed_message(address: str) -> str:
    return (f"此 Email 地址({address})在停止寄送名單中,郵件不會寄出。"
            "請先在申請人頁面按「解除停止寄送」(確認地址可以收信後),再重寄。")


def _refuse_suppressed(session: Session, address: str) -> None:
    # A copy to a suppressed address would end `suppressed` at once: say so instead of "queued".
    if suppression.active_suppression(session, address) is not None:
        raise ActionError(suppressed_message(address), 409)


def resend_mail(session: Session, settings: Settings, outbox_id: int, staff_name: str) -> OutboxMessage:
    """A copy of an earlier mail to the account's current address. A verification mail gets a fresh token
    (the old context's link is voided or erased); other mails reuse their stored context."""
    original = session.get(OutboxMessage, outbox_id)
    if original is None:
        raise ActionError("找不到此郵件。", 404)
    if original.template in NOT_RESENDABLE:
        raise ActionError(NOT_RESENDABLE[original.template], 409)
    account = account_of_mail(session, original)
    _refuse_suppressed(session, account.email if account else original.to_address)
    if original.template in VERIFICATION_TEMPLATES:
        if account is None:
            raise ActionError("此驗證信沒有對應的帳號,無法重寄。", 409)
        if account.is_verified:
            raise ActionError("此帳號已完成 Email 驗證,不需要重寄驗證信。", 409)
        copy = send_verification_mail(session, settings, account, original.template)
    elif original.template in RECOVERY_TEMPLATES:
        copy = _resend_recovery(session, settings, original.template, account, staff_name)
    else:
        to_address = account.email if account else original.to_address
        copy = queue_copy(session, settings, original, to_address)
    audit.record(session, actor(staff_name), "mail_resent", "outbox", original.id, copy_id=copy.id,
                 template=original.template, to_address=copy.to_address)
    return copy


def _resend_recovery(session: Session, settings: Settings, template: str, account: Account | None,
                     staff_name: str) -> OutboxMessage:
    """A password-reset mail again is a fresh link (the older ones void); an account reminder again lists
    the 帳號 of the account's verified address as they are now. Only for an account that could log in."""
    if account is None or not selfservice.can_recover(account):
        raise ActionError("此帳號目前無法登入(未審核通過、Email 未驗證或已停權),無法重寄此信。", 409)
    if template == "password-reset":
        copy = selfservice.queue_reset(session, settings, account.id, by="support", actor=actor(staff_name))
    else:
        copy = selfservice.queue_reminder(session, settings, account.email, actor=actor(staff_name))
    if copy is None:
        raise ActionError("此帳號目前無法登入,無法重寄此信。", 409)
    return copy
