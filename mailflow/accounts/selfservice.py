"""Self-service by mail (issue 14): a forgotten password, a forgotten 帳號, a change of Email and a change of
password, for accounts of both kinds. Each is a new purpose of the verification-token machinery
(mailflow.accounts.tokens), so each link is bound to its account, its purpose and the address it was sent to.

- **Password reset.** ``request_password_reset`` mails ``password-reset`` to an approved, verified account's
  address, with a link valid RESET_TTL, single use, voided by a newer one (issue_token), by a successful
  login (mailflow.accounts.login), and by a change of password or Email (``password_changed``,
  ``confirm_email_change``, support's correction voids the tokens sent to the old address).
  ``reset_password`` completes it. Nothing about the outcome goes back to the requester: the web answers
  the same 202 before any of this runs (see mailflow.web.selfservice), so there is nothing to enumerate.
- **Account reminder.** ``send_account_reminder`` mails ``account-reminder``, listing the 帳號 whose
  verified address it is, to that address and nowhere else.
- **Email change.** ``request_email_change`` (signed in, with the password) mails ``email-change`` to the
  new address with a /verify link bound to it; until it is completed there (with the password, like every
  /verify link: mailflow.accounts.verification) the old address stays the account's, verified.
  ``confirm_email_change`` then moves the account, voids the older links, ends every session and tells
  the old address (``email-changed``).
- **Password change.** ``change_password`` (signed in, current password).

Limits, all mailflow.ratelimit counters (guarded UPDATEs, exact under concurrency), each taken in a short
transaction of its own:
- per client address, CLIENT_LIMIT recovery requests (reset and reminder, form or API) per CLIENT_WINDOW:
  past it a 429, which says nothing about any account;
- per account, ACCOUNT_LIMIT reset mails per ACCOUNT_WINDOW, and per address ADDRESS_LIMIT recovery
  mails per ADDRESS_WINDOW: past them nothing is sent and the answer stays the same 202, so a limit
  cannot tell whether an account exists, and nobody can flood a holder's mailbox;
- per account, EMAIL_CHANGE_LIMIT email-change mails per ACCOUNT_WINDOW (a signed-in holder: a 429;
  counted in the request's transaction, see request_email_change).
Password checks (change of password, request of an Email change) count towards the login throttle.

Concurrency: issuing a reset link locks the account's row first (SELECT … FOR UPDATE on PostgreSQL; on
SQLite the first write of the transaction takes the database's write lock), so of two requests at once the
second voids the first's link after it committed: exactly one link stays usable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow import audit, ratelimit
from mailflow.accounts import throttle
from mailflow.accounts.login import companies_of, refusal
from mailflow.accounts.lookup import live_account
from mailflow.accounts.rules import check_field, new_password_errors
from mailflow.accounts.tokens import (
    MSG_TAMPERED,
    MSG_VOIDED,
    TokenError,
    consume,
    issue_token,
    load_token,
    void_tokens,
    void_tokens_for_address,
)
from mailflow.accounts.verification_mail import verify_url
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.mail import addresses
from mailflow.mail.outbox import is_suppressed
from mailflow.mail.queue import (
    queue_account_reminder,
    queue_email_change,
    queue_email_changed,
    queue_password_changed,
    queue_password_reset,
)
from mailflow.models import Account, OutboxMessage, TokenPurpose, VerificationToken
from mailflow.notify.events import emit_event
from mailflow.passwords import hash_password
from mailflow.refusals import Refused
from mailflow.timeutil import now

log = logging.getLogger(__name__)

RESET_TTL = timedelta(hours=1)
EMAIL_CHANGE_TTL = timedelta(hours=24)

CLIENT_LIMIT = 20
CLIENT_WINDOW = 3600
ACCOUNT_LIMIT = 3
ACCOUNT_WINDOW = 3600
ADDRESS_LIMIT = 5
ADDRESS_WINDOW = 24 * 3600
EMAIL_CHANGE_LIMIT = 3
# One address may hold many general accounts (one per company): a reset by address mails at most these.
MAX_ACCOUNTS_PER_ADDRESS = 20

ACCEPTED = "若資料正確,重設密碼信件已寄出,請於1小時內點選信中連結設定新密碼。"
REMINDER_ACCEPTED = "若此Email已完成驗證,系統已寄出以此Email註冊的帳號清單,請收取Email。"
MSG_CLIENT = "此網路位址送出的申請次數過多,請 {minutes} 分鐘後再試;如需協助請洽客服。"
MSG_WRONG_PASSWORD = "目前的密碼不正確。"
MSG_THROTTLED = "密碼錯誤次數過多,請 {minutes} 分鐘後再試。"
MSG_SAME_ADDRESS = "新的 Email 與目前的 Email 相同。"
MSG_SUPPRESSED = "系統無法寄信到此 Email(此地址已停止寄送),請改用其他 Email,或洽客服專線確認。"
MSG_CHANGE_LIMIT = "每小時最多可申請 {limit} 次變更 Email,請稍後再試。"
MSG_OTHER_SESSION = ("此重設密碼連結不屬於目前登入的帳號,連結已失效。"
                     "請先登出,再由帳號持有人重新申請重設密碼。")
MSG_NO_PASSWORD = "請輸入目前的密碼。"


class SelfServiceRefused(Refused):
    """A refused self-service step: ``errors`` maps fields to zh-TW messages (422), ``retry_after`` the
    seconds of a 429."""

    def __init__(self, status: int, message: str, reason: str = "", *, errors: dict[str, str] | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(status, message, reason)
        self.errors = errors or {}
        self.retry_after = retry_after


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


def _take(db: Database, key: str, limit: int, window: int) -> int | None:
    with db.session() as session:  # its own short transaction: the counter row is locked until commit
        return ratelimit.take(session, key, limit, window)


def admit_client(db: Database, client: str | None) -> None:
    """Count one recovery request (reset or reminder) from ``client``; 429 past CLIENT_LIMIT."""
    wait = _take(db, f"recovery-client|{client or 'unknown'}", CLIENT_LIMIT, CLIENT_WINDOW)
    if wait is not None:
        raise SelfServiceRefused(429, MSG_CLIENT.format(minutes=_minutes(wait)), "client", retry_after=wait)


def _admit_address(db: Database, address: str) -> bool:
    return _take(db, f"recovery-to|{addresses.key(address)}", ADDRESS_LIMIT, ADDRESS_WINDOW) is None


def reset_url(settings: Settings, token: str) -> str:
    return f"{settings.http.base_url.rstrip('/')}/password/reset/{token}"


def can_recover(account: Account) -> bool:
    """Approved, verified and not suspended: an account that could log in with the right password."""
    return refusal(account) is None


def _verified_holders(session: Session, address: str) -> list[Account]:
    """The live accounts whose current, verified address is ``address`` and that may log in."""
    key = addresses.key(address)
    found = session.scalars(
        select(Account).where(Account.email_key == key, func.lower(Account.email_verified_address) == key,
                              Account.account_key.is_not(None))
        .order_by(Account.id).limit(MAX_ACCOUNTS_PER_ADDRESS))
    return [account for account in found if can_recover(account)]


# --- password reset ------------------------------------------------------------------------------------


def request_password_reset(db: Database, settings: Settings, *, account: str = "", email: str = "",
                           client: str | None = None) -> int:
    """Mail a reset link to the account named by its 帳號, or to each account whose verified address is
    ``email``, when it may log in and is within its limits. Returns how many mails were queued — for logs
    and tests only: the requester is told the same thing whatever this returns."""
    with db.session() as session:
        if account.strip():
            found = live_account(session, account)
            targets = [found.id] if found is not None and can_recover(found) else []
            address = found.email if found is not None and targets else ""
        else:
            try:
                address = addresses.normalize(email)
            except addresses.AddressRefused:
                return 0
            targets = [holder.id for holder in _verified_holders(session, address)]
    if not targets or not _admit_address(db, address):
        return 0
    queued = 0
    for account_id in targets:
        if _take(db, f"reset-account|{account_id}", ACCOUNT_LIMIT, ACCOUNT_WINDOW) is not None:
            continue
        with db.session() as session:
            if queue_reset(session, settings, account_id, by="email" if email else "account",
                           client=client) is not None:
                queued += 1
    log.info("password reset asked from %s: %s mail(s) queued", client, queued)
    return queued


def _locked(session: Session, account_id: int) -> Account | None:
    """The account, its row locked for this transaction (PostgreSQL; SQLite's writers take turns)."""
    return session.scalar(select(Account).where(Account.id == account_id).with_for_update()
                          .execution_options(populate_existing=True))


def queue_reset(session: Session, settings: Settings, account_id: int, *, by: str,
                client: str | None = None, actor: str = "system") -> OutboxMessage | None:
    """Issue a reset link (voiding the older ones) and queue ``password-reset`` to the account's verified
    address, in the caller's transaction; None when the account may not recover (gone, unverified,
    suspended)."""
    account = _locked(session, account_id)
    if account is None or not can_recover(account):
        return None
    token, row = issue_token(session, settings, account, TokenPurpose.PASSWORD_RESET, account.email)
    row.expires_at = row.issued_at + RESET_TTL
    message = queue_password_reset(session, settings, account, reset_url(settings, token), row)
    audit.record(session, actor, "password.reset_requested", "account", account.id, by=by, client=client,
                 outbox_id=message.id, token_id=row.id)
    return message


@dataclass(frozen=True)
class ResetLink:
    """A usable reset link as its page shows it."""

    account: str
    address: str
    expires_at: Any


def _reset_row(session: Session, settings: Settings, token: str) -> tuple[VerificationToken, Account]:
    """The open reset token and its account: TokenError 400 for a token of another purpose or a forged
    one, 410 expired, used or voided — also when the account's address is no longer the one it was sent
    to (an Email change voids it; this is the same rule read again)."""
    row = load_token(session, settings, token, (TokenPurpose.PASSWORD_RESET,))
    account = session.get(Account, row.account_id)
    if account is None:
        raise TokenError(400, MSG_TAMPERED, "no-account")
    if account.email_key != addresses.key(row.address):
        raise TokenError(410, MSG_VOIDED, "address-changed")
    return row, account


def preview_reset(session: Session, settings: Settings, token: str, signed_in: int | None) -> ResetLink:
    """What GET /password/reset/{token} shows; never consumes. ``signed_in`` is the account id of the
    request's session, if any: a link opened in another account's session is refused (410) — and left as
    it is, since opening a link changes nothing."""
    row, account = _reset_row(session, settings, token)
    if signed_in is not None and signed_in != account.id:
        raise TokenError(410, MSG_OTHER_SESSION, "other-session")
    return ResetLink(account.account, addresses.mask(row.address), row.expires_at)


def reset_password(session: Session, settings: Settings, token: str, password: str, confirm: str,
                   signed_in: int | None) -> Account:
    """Set a new password with a reset link. Order: the link (400/410), the session it came from (410,
    and the link is voided: someone else's session holds it), the new password (422), then the single use
    (a conditional UPDATE: of two submits one wins, the other is 410)."""
    row, account = _reset_row(session, settings, token)
    if signed_in is not None and signed_in != account.id:
        row.voided_at = now()
        audit.record(session, "system", "password.reset_refused", "account", account.id, token_id=row.id,
                     why="opened in another account's session")
        raise TokenError(410, MSG_OTHER_SESSION, "other-session")
    errors = new_password_errors(account.account, password, confirm)
    if errors:
        raise SelfServiceRefused(422, next(iter(errors.values())), "weak", errors=errors)
    if not consume(session, row):
        raise TokenError(410, "此連結已使用過或已失效。", "race")
    password_changed(session, settings, account, password, via="reset", token_id=row.id)
    return account


def password_changed(session: Session, settings: Settings, account: Account, password: str, *, via: str,
                     token_id: int | None = None) -> OutboxMessage:
    """Store the new password and what follows from it: every session ends (the session cookie carries
    the password hash and the generation), open reset and Email-change links die, ``password-changed``
    goes to the address."""
    account.password_hash = hash_password(password)
    account.session_generation += 1
    voided = (void_tokens(session, account.id, TokenPurpose.PASSWORD_RESET)
              + void_tokens(session, account.id, TokenPurpose.EMAIL_CHANGE))
    moment = now()
    message = queue_password_changed(session, settings, account, via, moment)
    audit.record(session, f"account:{account.id}", "password.changed", "account", account.id, via=via,
                 token_id=token_id, voided_tokens=voided, outbox_id=message.id)
    log.info("account %s changed its password (%s); sessions ended", account.id, via)
    return message


# --- account reminder ----------------------------------------------------------------------------------


def send_account_reminder(db: Database, settings: Settings, email: str, client: str | None = None) -> bool:
    """Mail ``account-reminder`` (the 帳號 and companies whose verified address is ``email``) to that
    address, within its limit. Whether it was sent goes to logs and tests only."""
    try:
        address = addresses.normalize(email)
    except addresses.AddressRefused:
        return False
    with db.session() as session:
        if not _verified_holders(session, address):
            return False
    if not _admit_address(db, address):
        return False
    with db.session() as session:
        return queue_reminder(session, settings, address, client=client) is not None


def queue_reminder(session: Session, settings: Settings, address: str, *, client: str | None = None,
                   actor: str = "system") -> OutboxMessage | None:
    holders = _verified_holders(session, address)
    if not holders:
        return None
    listed = [{"account": a.account, "kind": a.kind,
               "companies": [str(c["name"]) for c in companies_of(session, a)]} for a in holders]
    message = queue_account_reminder(session, settings, holders[0], listed)
    for holder in holders:
        audit.record(session, actor, "account.reminder_sent", "account", holder.id, client=client,
                     outbox_id=message.id)
    return message


# --- changes made by the signed-in holder --------------------------------------------------------------


def _check_password(session: Session, account: Account, password: str, client: str | None) -> None:
    """The current password, counted like a login (mailflow.accounts.throttle.check_in: reserved and
    committed before the check, which commits the request's transaction so far): 429 while throttled, 403
    wrong (and counted)."""
    try:
        right = throttle.check_in(session, account.account, account.password_hash, password, client)
    except throttle.Throttled as exc:
        raise SelfServiceRefused(429, MSG_THROTTLED.format(minutes=_minutes(exc.retry_after)), "throttled",
                                 retry_after=exc.retry_after) from None
    if not right:
        raise SelfServiceRefused(403, MSG_WRONG_PASSWORD if password else MSG_NO_PASSWORD, "wrong-password")


def change_password(session: Session, settings: Settings, account: Account, current: str, new: str,
                    confirm: str, client: str | None) -> OutboxMessage:
    """變更密碼 on /account: 429/403 as _check_password, 422 the registration's rules."""
    _check_password(session, account, current, client)
    errors = new_password_errors(account.account, new, confirm)
    if errors:
        raise SelfServiceRefused(422, next(iter(errors.values())), "weak", errors=errors)
    return password_changed(session, settings, account, new, via="account")


def request_email_change(session: Session, settings: Settings, account: Account, email: str, password: str,
                         client: str | None) -> OutboxMessage:
    """變更 Email on /account: the password (429/403), the address (422), the suppression list (409),
    EMAIL_CHANGE_LIMIT an hour (429); then ``email-change`` to the new address with a /verify link bound
    to it (voiding an older change's link). The account keeps its address until the link is completed."""
    _check_password(session, account, password, client)
    address, error = check_field("email", email)
    if error:
        raise SelfServiceRefused(422, error, "email", errors={"email": error})
    if addresses.key(address) == account.email_key:
        raise SelfServiceRefused(422, MSG_SAME_ADDRESS, "same", errors={"email": MSG_SAME_ADDRESS})
    if is_suppressed(session, address):
        raise SelfServiceRefused(409, MSG_SUPPRESSED, "suppressed")
    # Counted in the request's own transaction, after the argon2 check: the counter is this account's
    # alone, and a second connection per request would starve the pool under many requests at once.
    wait = ratelimit.take(session, f"email-change|{account.id}", EMAIL_CHANGE_LIMIT, ACCOUNT_WINDOW)
    if wait is not None:
        raise SelfServiceRefused(429, MSG_CHANGE_LIMIT.format(limit=EMAIL_CHANGE_LIMIT), "limit",
                                 retry_after=wait)
    _locked(session, account.id)  # two requests at once: the second voids the first's link (module doc)
    token, row = issue_token(session, settings, account, TokenPurpose.EMAIL_CHANGE, address)
    row.expires_at = row.issued_at + EMAIL_CHANGE_TTL
    message = queue_email_change(session, settings, account, address, addresses.mask(account.email),
                                 verify_url(settings, token), row)
    audit.record(session, f"account:{account.id}", "email.change_requested", "account", account.id,
                 new_address=address, outbox_id=message.id, token_id=row.id)
    return message


def confirm_email_change(session: Session, settings: Settings, account: Account,
                         row: VerificationToken) -> OutboxMessage:
    """The new address's link was completed with the password (mailflow.accounts.verification): the
    account takes the address, verified; the links sent to the old address and every other open reset
    or change die; every session ends; the old address is told (``email-changed``)."""
    old = account.email
    voided = (void_tokens_for_address(session, account.id, old)
              + void_tokens(session, account.id, TokenPurpose.PASSWORD_RESET)
              + void_tokens(session, account.id, TokenPurpose.EMAIL_CHANGE))
    moment = now()
    account.email = row.address
    account.email_key = addresses.key(row.address)
    account.email_verified_at = moment
    account.email_verified_address = row.address
    account.email_undeliverable = False
    account.session_generation += 1
    message = queue_email_changed(session, settings, account, old, addresses.mask(row.address), moment)
    emit_event(session, "account.email_changed", account.id, {"account": account.account, "by": "holder"})
    audit.record(session, f"account:{account.id}", "email.changed", "account", account.id, old_address=old,
                 new_address=row.address, voided_tokens=voided, token_id=row.id, outbox_id=message.id)
    log.info("account %s confirmed its new address; sessions ended", account.id)
    return message
