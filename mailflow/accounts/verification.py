"""Email verification: queueing a verification mail with a fresh token, completing a token with the
account's password (so a forwarded mail is useless to its new reader), and asking for a new mail.

Completion order: the token must load (400/410), the password must be the account's (403; the fifth
wrong one voids the token), the account's current address must equal the bound one (409), and only
then is the token consumed with a conditional UPDATE, so two submits cannot both complete it.

A used, expired or voided token whose bound address is no longer the account's answers 409, not 410,
once the password is right: correcting an address voids the tokens sent to the old one, and the holder
of such a link should learn that the address changed, not only that the link is dead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts import throttle
from mailflow.accounts.lookup import account_of_mail, live_account
from mailflow.accounts.selfservice import confirm_email_change
from mailflow.accounts.shared import BindingError, confirm_binding
from mailflow.accounts.signups import addressee
from mailflow.accounts.tokens import TokenError, consume, issue_token, load_token, read_token
from mailflow.config import Settings
from mailflow.mail import addresses
from mailflow.mail.catalog import VERIFICATION_TEMPLATES
from mailflow.mail.outbox import enqueue, is_suppressed
from mailflow.mail.render import display_hours
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    AuditEvent,
    OutboxMessage,
    SupportKind,
    TokenPurpose,
    VerificationToken,
)
from mailflow.notify.events import emit_event
from mailflow.passwords import verify_password
from mailflow.refusals import Refused
from mailflow.support.items import open_item
from mailflow.timeutil import now

log = logging.getLogger(__name__)

WRONG_PASSWORDS_VOID = 5
RESENDS_PER_HOUR = 3
# What a /verify link may complete. A password-reset link has its own page (/password/reset/{token}) and
# no meaning here: shown here it answers 400, like a link that was never issued.
LINK_PURPOSES = (TokenPurpose.VERIFY_EMAIL, TokenPurpose.BINDING, TokenPurpose.EMAIL_CHANGE)


class VerifyError(Refused):
    """A refused verification step. ``undo`` asks the caller to roll the transaction back (the token
    was already consumed)."""

    def __init__(self, status: int, message: str, reason: str, *, undo: bool = False) -> None:
        super().__init__(status, message, reason)
        self.undo = undo


@dataclass
class Completed:
    account: Account
    token: VerificationToken


def verify_url(settings: Settings, token: str) -> str:
    return f"{settings.http.base_url.rstrip('/')}/verify/{token}"


def send_verification_mail(
    session: Session, settings: Settings, account: Account, template: str
) -> OutboxMessage:
    """Issue a verify-email token bound to the account's current address (voiding older ones) and queue
    ``template`` (account-approved or verify-reminder) with its link, in the caller's transaction."""
    if template not in VERIFICATION_TEMPLATES:
        raise ValueError(f"not a verification mail template: {template!r}")
    token, row = issue_token(session, settings, account, TokenPurpose.VERIFY_EMAIL, account.email)
    # kind: a shared account (共用帳號) was never reviewed, so its mails have their own subject and wording.
    context = {"name": account.name, "account": account.account, "kind": account.kind,
               **_link(settings, token, row)}
    return enqueue(session, template, account.email, message_id_domain=settings.mail.message_id_domain,
                   to_name=addressee(account), context=context, account_id=account.id, token_id=row.id)


def _link(settings: Settings, token: str, row: VerificationToken) -> dict[str, str]:
    return {"verify_url": verify_url(settings, token), "expires_at": row.expires_at.isoformat()}


class RenewRefused(ValueError):
    """Why a verification mail cannot get a fresh link (English, for operators)."""


def renew_link(session: Session, settings: Settings, message: OutboxMessage) -> None:
    """Give a verification mail about to be sent again (an operator's retry after it failed) a fresh
    token, voiding the older ones: its raw link was erased when it reached a final state, and without one
    the mail would be unrecoverable. Refused when the account is gone or verified, or no longer has the
    address the mail goes to (a new mail to the new address is the way then)."""
    if message.template not in VERIFICATION_TEMPLATES:
        raise ValueError(f"not a verification mail: {message.template!r}")
    account = account_of_mail(session, message)
    if account is None:
        raise RenewRefused("it belongs to no account")
    if account.is_verified:
        raise RenewRefused(f"account {account.account} is verified already")
    if account.email_key != message.to_key:
        raise RenewRefused(f"account {account.account} has another address now; send it a new "
                           "verification mail instead")
    token, row = issue_token(session, settings, account, TokenPurpose.VERIFY_EMAIL, account.email)
    message.context = {**message.context, **_link(settings, token, row)}
    message.token_id = row.id
    audit.record(session, "system", "verification.renewed", "account", account.id, outbox_id=message.id,
                 token_id=row.id)


def _flag_for_support(session: Session, account: Account, row: VerificationToken, summary: str) -> None:
    """Tell customer service someone holds this account's link without its password (or after the
    address changed): often a forwarded verification mail."""
    open_item(session, SupportKind.FORWARDED_VERIFICATION, account_id=account.id, address=row.address,
              summary=summary)


def _wrong_password(session: Session, account: Account, row: VerificationToken) -> VerifyError:
    session.execute(
        update(VerificationToken).where(VerificationToken.id == row.id)
        .values(wrong_passwords=VerificationToken.wrong_passwords + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(row, ["wrong_passwords"])
    left = WRONG_PASSWORDS_VOID - row.wrong_passwords
    if left > 0:
        return VerifyError(403, f"密碼錯誤,請輸入帳號 {account.account} 的密碼(尚可再試 {left} 次)。"
                           "若您不是此帳號的申請人,請勿使用此連結。", "wrong-password")
    row.voided_at = now()
    audit.record(session, "system", "verification.voided", "account", account.id,
                 token_id=row.id, purpose=row.purpose, why="too many wrong passwords")
    _flag_for_support(session, account, row, "驗證連結密碼錯誤 5 次,連結已失效(可能為轉寄的驗證信)")
    log.warning("verification token %s voided after %s wrong passwords", row.id, WRONG_PASSWORDS_VOID)
    return VerifyError(403, "密碼錯誤次數過多,此連結已失效。請由申請人重新申請驗證信,或洽客服。", "voided")


def _address_changed(account: Account, row: VerificationToken) -> bool:
    # An Email-change link is bound to the NEW address, which the account only takes when it completes
    # (a change of the account's address in between voids it: mailflow.accounts.selfservice).
    if row.purpose == TokenPurpose.EMAIL_CHANGE:
        return False
    return account.email_key != addresses.key(row.address)


def _refuse_address_changed(session: Session, account: Account, row: VerificationToken) -> VerifyError:
    _flag_for_support(session, account, row, "驗證連結寄送後帳號 Email 已變更")
    return VerifyError(409, "此連結寄送後,帳號的 Email 已變更為其他地址,無法以此連結驗證。"
                       "請使用寄到目前 Email 的最新驗證信,或重新申請驗證信。", "address-changed")


# The 410 refusals of load_token that may hide an address change; 400 (tampered) never does.
_DEAD_REASONS = ("used", "voided", "expired")


def _load_open(session: Session, settings: Settings, token: str, password: str) -> VerificationToken:
    """load_token, except that a dead token sent to an address the account no longer has answers 409
    (with the right password) instead of its 410."""
    try:
        return load_token(session, settings, token, LINK_PURPOSES)
    except TokenError as exc:
        if exc.reason not in _DEAD_REASONS:
            raise
        moved = _moved_away(session, settings, token, password)
        if moved is None:
            raise
        raise moved from None


def _moved_away(session: Session, settings: Settings, token: str, password: str) -> VerifyError | None:
    """The 409 for a dead token whose account's address changed since it was sent, once the password
    is right; None otherwise. Wrong passwords on a dead token are not counted: nothing is left to void."""
    # load_token got past the signature and stored-hash checks, so the row at this jti is the token's.
    jti = read_token(settings, token)[0]
    row = session.scalar(select(VerificationToken).where(VerificationToken.jti == jti))
    account = session.get(Account, row.account_id) if row is not None else None
    # The address first: argon2 runs only for the rare link whose address changed.
    if row is None or account is None or row.purpose not in LINK_PURPOSES:
        return None
    if not _address_changed(account, row):
        return None
    if not password or not verify_password(account.password_hash, password):
        return None
    return _refuse_address_changed(session, account, row)


def complete_verification(session: Session, settings: Settings, token: str, password: str) -> Completed:
    """Use ``token`` with the account's ``password``. Raises TokenError (400/410) or VerifyError
    (403 wrong password, 409 address changed — also for a dead link whose address changed, 410 lost a
    race, the binding's own refusals)."""
    row = _load_open(session, settings, token, password)
    account = session.get(Account, row.account_id)
    if account is None:
        raise TokenError(400, "此連結無效。", "no-account")
    if not password or not verify_password(account.password_hash, password):
        raise _wrong_password(session, account, row)
    if _address_changed(account, row):
        raise _refuse_address_changed(session, account, row)
    if not consume(session, row):
        raise VerifyError(410, "此連結已使用過或已失效。", "race")
    moment = now()
    if row.purpose == TokenPurpose.VERIFY_EMAIL:
        account.email_verified_at = moment
        account.email_verified_address = row.address
        emit_event(session, "account.verified", account.id,
                   {"account": account.account, "kind": account.kind})
    elif row.purpose == TokenPurpose.BINDING:
        try:
            confirm_binding(session, row)
        except BindingError as exc:
            raise VerifyError(exc.status, exc.message, "binding", undo=True) from None
    elif row.purpose == TokenPurpose.EMAIL_CHANGE:
        confirm_email_change(session, settings, account, row)
    audit.record(session, f"account:{account.id}", "verification.completed", "account", account.id,
                 token_id=row.id, purpose=row.purpose)
    log.info("verification token %s completed (%s) for account %s", row.id, row.purpose, account.id)
    return Completed(account, row)


def find_account(session: Session, account_id: str) -> Account | None:
    """A live account by its id as typed (case-insensitive)."""
    return live_account(session, account_id)


def _resends_last_hour(session: Session, account: Account) -> int:
    count = session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.target_type == "account", AuditEvent.target_id == account.id,
            AuditEvent.action == "verification.resent", AuditEvent.at >= now() - timedelta(hours=1))
    )
    return int(count or 0)


def request_new_mail(
    session: Session, settings: Settings, account_id: str, password: str, client: str | None
) -> OutboxMessage:
    """Queue a new verification mail (voiding the older links) for an approved, unverified account that
    proves its password. Raises VerifyError: 429 too many, 401 bad credentials, 403 not approved, 409
    already verified or the address suppressed (no mail could reach it). Failed passwords count towards
    the login throttle."""
    # The login's throttle, per account and address: one address guessing cannot block the account's
    # holder from asking for a new mail elsewhere.
    if throttle.login_retry_after(session, account_id, client) is not None:
        raise VerifyError(429, "嘗試次數過多,請 15 分鐘後再試。", "throttled")
    account = find_account(session, account_id)
    if account is None or not verify_password(account.password_hash, password):
        throttle.record_login_failure(session, account_id, client)
        raise VerifyError(401, "帳號或密碼錯誤。", "bad-credentials")
    if account.status == AccountStatus.PENDING and account.kind == AccountKind.GENERAL:
        raise VerifyError(403, "帳號尚未審核,審核通過後系統會寄出驗證信。", "pending")
    if account.status != AccountStatus.APPROVED:
        raise VerifyError(403, "帳號未審核通過,無法寄送驗證信。", "not-approved")
    if account.is_verified:
        raise VerifyError(409, "此帳號的 Email 已完成驗證,可直接登入。", "already-verified")
    if _resends_last_hour(session, account) >= RESENDS_PER_HOUR:
        raise VerifyError(429, f"每小時最多可申請 {RESENDS_PER_HOUR} 次驗證信,請稍後再試。", "resend-limit")
    if is_suppressed(session, account.email):
        # The mail would end `suppressed` at once; "queued" would send the applicant waiting for nothing.
        raise VerifyError(409, f"系統無法寄信到此帳號的 Email({account.email}),此地址已停止寄送。"
                          f"請洽客服專線 {settings.mail.support_phone}"
                          f"(服務時間 {display_hours(settings.mail.support_hours)})"
                          "確認或更正 Email。", "suppressed")
    message = send_verification_mail(session, settings, account, "verify-reminder")
    audit.record(session, f"account:{account.id}", "verification.resent", "account", account.id,
                 outbox_id=message.id)
    return message
