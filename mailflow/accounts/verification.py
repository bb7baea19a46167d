"""Email verification: queueing a verification mail with a fresh token, completing a token with the
account's password (so a forwarded mail is useless to its new reader), and asking for a new mail.

Completion, in three steps (issue 13 findings 0, 1, 3): ``reserve_try`` — the link must be ours (400),
still bound to the account's address (409 ``Moved``, before and whatever the password: no oracle), open
(410), and one of its WRONG_PASSWORDS_VOID tries and one try of the login limits are reserved with guarded
UPDATEs (429 past a limit); then the password is checked, outside any transaction; then
``wrong_password`` (the fifth voids the link) or ``right_password`` (tries given back, the link used with
a conditional UPDATE, so two submits cannot both complete it).

A used, expired or voided link whose bound address is no longer the account's answers 409 with a page that
says the Email was changed and whether a new mail went to the new address (issue 15 item 6).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts import throttle
from mailflow.accounts.login import check_password
from mailflow.accounts.lookup import account_of_mail, live_account
from mailflow.accounts.selfservice import confirm_email_change
from mailflow.accounts.shared import BindingError, confirm_binding
from mailflow.accounts.tokens import (
    StoredToken,
    TokenError,
    issue_token,
    issued_for,
    moved,
    read_token,
    refuse_dead,
)
from mailflow.accounts.verification_mail import link_context, send_verification_mail
from mailflow.config import Settings
from mailflow.db import Database, savepoint
from mailflow.mail.catalog import VERIFICATION_TEMPLATES
from mailflow.mail.outbox import is_suppressed
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
from mailflow.notify.writes import writer_turn
from mailflow.passwords import verify_or_spend
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

    def __init__(self, status: int, message: str, reason: str, *, undo: bool = False,
                 retry_after: int | None = None) -> None:
        super().__init__(status, message, reason)
        self.undo = undo
        self.retry_after = retry_after


@dataclass
class Completed:
    account: Account
    token: VerificationToken


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
    message.context = {**message.context, **link_context(settings, token, row)}
    message.token_id = row.id
    audit.record(session, "system", "verification.renewed", "account", account.id, outbox_id=message.id,
                 token_id=row.id)


def _flag_for_support(session: Session, account_id: int, address: str, summary: str) -> None:
    """Tell customer service someone holds this account's link without its password (or after the
    address changed): often a forwarded verification mail."""
    open_item(session, SupportKind.FORWARDED_VERIFICATION, account_id=account_id, address=address,
              summary=summary)


def _address_changed(account: Account, row: StoredToken) -> bool:
    return moved(account.email_key, row)


def moved_message(newer_link_sent: bool) -> str:
    """Issue 15 item 6: what the holder of a link whose address was changed (by customer service, or
    by the account itself) reads — the same whatever password came with it, so it is no oracle."""
    then = ("新的驗證信已寄到新的 Email,請改用新信件中的連結完成驗證。" if newer_link_sent
            else "請至「重新寄送驗證信」申請寄到目前 Email 的驗證信,或洽客服。")
    return f"此連結寄出後,帳號的 Email 已變更,這封信中的連結已無法使用。{then}"


def newer_link_sent(session: Session, account_id: int, purpose: str, current_key: str) -> bool:
    """Whether the account has an open link of ``purpose`` mailed to its current address."""
    found = session.scalar(
        select(VerificationToken.id).where(
            VerificationToken.account_id == account_id, VerificationToken.purpose == purpose,
            VerificationToken.used_at.is_(None), VerificationToken.voided_at.is_(None),
            VerificationToken.expires_at > now(), func.lower(VerificationToken.address) == current_key)
        .limit(1))
    return found is not None


def moved_answer(db: Database, settings: Settings, token: str) -> str:
    """moved_message for the link ``token`` (one load_token refused as "moved": its row exists), in a
    short transaction of its own: the GET /verify page's words for it."""
    jti = read_token(settings, token)[0]
    with db.session() as session:
        row = session.scalar(select(VerificationToken).where(VerificationToken.jti == jti))
        account = session.get(Account, row.account_id) if row is not None else None
        sent = account is not None and row is not None and newer_link_sent(
            session, account.id, row.purpose, account.email_key)
    return moved_message(sent)


class Moved(VerifyError):
    """409: the link went to an address the account no longer has (no password was checked)."""

    def __init__(self, message: str, account_id: int, address: str) -> None:
        super().__init__(409, message, "address-changed")
        self.account_id = account_id
        self.address = address


@dataclass(frozen=True)
class Slot:
    """One password check of a link, reserved: the token's try and the login limits' (throttle)."""

    token_id: int
    account_id: int
    purpose: str
    address: str
    reservation: throttle.Reservation


# The token's try is reserved with one guarded UPDATE before anything is read, so that of any number of
# concurrent tries at most WRONG_PASSWORDS_VOID ever reach the password check (issue 13 finding 3), and
# so that on SQLite the transaction holds the write lock from its first statement.
_TAKE_TRY = (
    update(VerificationToken)
    .where(VerificationToken.jti == bindparam("b_jti"), VerificationToken.used_at.is_(None),
           VerificationToken.voided_at.is_(None), VerificationToken.expires_at > bindparam("b_now"),
           VerificationToken.wrong_passwords < WRONG_PASSWORDS_VOID)
    .values(wrong_passwords=VerificationToken.wrong_passwords + 1)
    .execution_options(synchronize_session=False)
)


def reserve_try(session: Session, settings: Settings, token: str,
                client: str | None) -> tuple[Slot, str | None]:
    """The first step of a completion, in a short transaction of its own: reserve one password check of
    the link and of the account's login limits, and return it with the account's password hash. Raises,
    with nothing counted (the caller rolls back): TokenError 400/410 for a forged or dead link; Moved
    (409) for a link whose address the account no longer has — dead or not, before any password is
    looked at (issue 13 finding 1: no oracle); VerifyError 429 when a limit is reached."""
    jti, body = read_token(settings, token)
    taken = session.execute(_TAKE_TRY, {"b_jti": jti, "b_now": now()}).rowcount  # type: ignore[attr-defined]
    found = session.scalar(select(VerificationToken).where(VerificationToken.jti == jti))
    if found is not None and found.purpose not in LINK_PURPOSES:
        found = None  # a password-reset link has its own page: here it is one that was never issued
    row = issued_for(found, body, token)
    account = session.get(Account, row.account_id)
    if account is None:
        raise TokenError(400, "此連結無效。", "no-account")
    if _address_changed(account, row):
        raise Moved(moved_message(newer_link_sent(session, account.id, row.purpose, account.email_key)),
                    account.id, row.address)
    if not taken:
        refuse_dead(row)
        # Open, but its last tries are being checked by another worker right now.
        raise VerifyError(429, "此連結正在驗證中,請稍後再試。", "busy")
    try:
        reservation = throttle.reserve_login(session, account.account, client)
    except throttle.Throttled as exc:
        raise VerifyError(429, f"嘗試次數過多,請 {throttle.minutes(exc.retry_after)} 分鐘後再試。",
                          "throttled", retry_after=exc.retry_after) from None
    slot = Slot(row.id, account.id, row.purpose, row.address, reservation)
    return slot, account.password_hash


def wrong_password(session: Session, slot: Slot) -> VerifyError:
    """After a wrong password: the reserved try stays counted; the try that makes WRONG_PASSWORDS_VOID
    voids the link (and tells customer service)."""
    voided = session.execute(
        update(VerificationToken)
        .where(VerificationToken.id == slot.token_id, VerificationToken.used_at.is_(None),
               VerificationToken.voided_at.is_(None),
               VerificationToken.wrong_passwords >= WRONG_PASSWORDS_VOID)
        .values(voided_at=now()).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    account = session.get(Account, slot.account_id)
    name = account.account if account is not None else ""
    if not voided:
        tries = session.scalar(select(VerificationToken.wrong_passwords)
                               .where(VerificationToken.id == slot.token_id)) or 0
        left = WRONG_PASSWORDS_VOID - tries
        if left > 0:
            return VerifyError(403, f"密碼錯誤,請輸入帳號 {name} 的密碼(尚可再試 {left} 次)。"
                               "若您不是此帳號的申請人,請勿使用此連結。", "wrong-password")
        return VerifyError(403, MSG_TOO_MANY, "voided")
    audit.record(session, "system", "verification.voided", "account", slot.account_id,
                 token_id=slot.token_id, purpose=slot.purpose, why="too many wrong passwords")
    _flag_for_support(session, slot.account_id, slot.address,
                      "驗證連結密碼錯誤 5 次,連結已失效(可能為轉寄的驗證信)")
    log.warning("verification token %s voided after %s wrong passwords", slot.token_id, WRONG_PASSWORDS_VOID)
    return VerifyError(403, MSG_TOO_MANY, "voided")


MSG_TOO_MANY = "密碼錯誤次數過多,此連結已失效。請由申請人重新申請驗證信,或洽客服。"


def right_password(session: Session, settings: Settings, slot: Slot) -> Completed:
    """After the right password: give the tries back and use the link, if it is still open (a double
    submit loses: 410) and still bound to the account's address (409). Raises VerifyError; ``undo``
    asks the caller to roll back."""
    used = session.execute(
        update(VerificationToken)
        .where(VerificationToken.id == slot.token_id, VerificationToken.used_at.is_(None),
               VerificationToken.voided_at.is_(None))
        .values(used_at=now(), wrong_passwords=VerificationToken.wrong_passwords - 1)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not used:
        raise VerifyError(410, "此連結已使用過或已失效。", "race")
    row = session.get(VerificationToken, slot.token_id)
    account = session.get(Account, slot.account_id)
    assert row is not None and account is not None
    session.refresh(row)
    if _address_changed(account, row):  # changed while the password was being checked
        raise VerifyError(409, moved_message(False), "address-changed", undo=True)
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
    throttle.give_back(session, slot.reservation)  # last: its rows stay locked until the commit
    log.info("verification token %s completed (%s) for account %s", row.id, row.purpose, account.id)
    return Completed(account, row)


def note_moved(session: Session, refusal: Moved) -> None:
    _flag_for_support(session, refusal.account_id, refusal.address, "驗證連結寄送後帳號 Email 已變更")


def complete_verification(session: Session, settings: Settings, token: str, password: str,
                          client: str | None = None) -> Completed:
    """Use ``token`` with the account's ``password``, every step in the caller's ``session`` (the CLI's
    demo, tests). The web runs the same steps each in a short transaction of its own, holding no
    connection during the password check (complete_link). Raises TokenError (400/410) or
    VerifyError (403 wrong password, 409 address changed, 410 lost a race, 429, the binding's own
    refusals)."""
    try:
        with savepoint(session):  # a Moved refusal undoes the reservation alone, not the caller's work
            slot, password_hash = reserve_try(session, settings, token, client)
    except Moved as refusal:
        note_moved(session, refusal)
        raise
    if not verify_or_spend(password_hash, password):
        raise wrong_password(session, slot)
    return right_password(session, settings, slot)


def complete_link(db: Database, settings: Settings, token: str, password: str,
                  client: str | None) -> Completed:
    """POST /verify/{token}: the steps of complete_verification, each in its own short transaction (in
    the process's writer turn), none open during the password check (argon2, which may also wait for a
    free slot). Raises as complete_verification does; a refusal that undoes its step rolls it back."""
    try:
        with writer_turn(db), db.session() as session:
            slot, password_hash = reserve_try(session, settings, token, client)
    except Moved as moved:
        with writer_turn(db), db.session() as session:
            note_moved(session, moved)
        raise
    right = verify_or_spend(password_hash, password)
    with writer_turn(db), db.session() as session:
        if not right:
            wrong = wrong_password(session, slot)
        else:
            try:
                return right_password(session, settings, slot)
            except VerifyError as exc:
                if exc.undo:
                    session.rollback()
                raise
    raise wrong


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
    db: Database, settings: Settings, account_id: str, password: str, client: str | None
) -> OutboxMessage:
    """Queue a new verification mail (voiding the older links) for an approved, unverified account that
    proves its password. Raises VerifyError: 429 too many, 401 bad credentials, 403 not approved, 409
    already verified or the address suppressed (no mail could reach it). The password check counts
    against the login's limits (mailflow.accounts.throttle) and holds no connection while it runs."""

    try:
        found, reservation, ok = check_password(db, account_id, password, client, find_account)
    except throttle.Throttled as exc:
        raise VerifyError(429, f"嘗試次數過多,請 {throttle.minutes(exc.retry_after)} 分鐘後再試。",
                          "throttled", retry_after=exc.retry_after) from None
    if not ok or found is None:
        raise VerifyError(401, "帳號或密碼錯誤。", "bad-credentials")
    with writer_turn(db), db.session() as session:
        throttle.give_back(session, reservation)
    with writer_turn(db), db.session() as session:
        account = session.get(Account, found)
        if account is None:
            raise VerifyError(401, "帳號或密碼錯誤。", "bad-credentials")
        return _queue_new_mail(session, settings, account)


def _queue_new_mail(session: Session, settings: Settings, account: Account) -> OutboxMessage:
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
