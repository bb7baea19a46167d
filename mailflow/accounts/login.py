"""The applicant login gate (POST /api/session): only approved accounts with a verified address get in;
everyone else learns why in zh-TW. Tries are limited per (account, client address), per client address
and per account with a growing wait (mailflow.accounts.throttle), each try reserved before its password is
checked and no database connection held during the check."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.accounts import throttle
from mailflow.accounts.lookup import live_account
from mailflow.accounts.shared import active_ubn, bound_companies
from mailflow.accounts.tokens import void_tokens
from mailflow.db import Database
from mailflow.models import Account, AccountKind, AccountStatus, TokenPurpose
from mailflow.notify.writes import writer_turn
from mailflow.passwords import hash_password, needs_rehash

MSG_BAD_CREDENTIALS = "帳號或密碼錯誤"
MSG_THROTTLED = "嘗試次數過多,請 {minutes} 分鐘後再試"
MSG_PENDING = "帳號尚未審核,審核結果會以Email通知;審核通過後,請點選通知信中的連結完成Email驗證,即可登入。"
MSG_REJECTED = "帳號未審核通過,未通過的原因已寄到您的Email;請依原因修正後重新申請帳號。"
MSG_UNVERIFIED = ("Email 尚未驗證,請點選驗證信中的連結並輸入密碼完成驗證後再登入;"
                  "未收到信或連結已失效,請使用「重新寄送驗證信」。")
MSG_SUSPENDED = "帳號已停用,請洽客服"

@dataclass
class LoginResult:
    status: int
    body: dict[str, Any]
    account: Account | None = None
    companies: list[dict[str, Any]] = field(default_factory=list)
    retry_after: int | None = None  # seconds, with a 429: sent as the Retry-After header


def throttled(seconds: int) -> LoginResult:
    minutes = max(1, math.ceil(seconds / 60))
    return LoginResult(429, {"error": MSG_THROTTLED.format(minutes=minutes)}, retry_after=seconds)


def _find(session: Session, account_id: str) -> Account | None:
    """The live account with this id, else the newest rejected one (whose id was freed), so a rejected
    applicant with the right password learns the outcome rather than 'wrong password'."""
    key = account_id.strip().lower()
    if not key:
        return None
    live = live_account(session, key)
    if live is not None:
        return live
    return session.scalars(
        select(Account).where(Account.account_key.is_(None), func.lower(Account.account) == key)
        .order_by(Account.id.desc()).limit(1)
    ).first()


def companies_of(session: Session, account: Account) -> list[dict[str, Any]]:
    return [{"ubn": c["ubn"], "name": c["name"]} for c in bound_companies(session, account)]


def active_ubn_of(session: Session, account: Account, companies: list[dict[str, Any]]) -> str | None:
    if account.kind == AccountKind.SHARED:
        return active_ubn(session, account)
    return str(companies[0]["ubn"]) if companies else None


def refusal(account: Account) -> str | None:
    """Why this account (with the right password) may not log in, or None."""
    if account.status == AccountStatus.SUSPENDED:
        return MSG_SUSPENDED
    if account.status == AccountStatus.REJECTED:
        return MSG_REJECTED
    if account.status != AccountStatus.APPROVED:
        return MSG_PENDING
    if not account.is_verified:
        return MSG_UNVERIFIED
    return None


def check_password(
    db: Database, account_id: str, password: str, client: str | None,
    find: Callable[[Session, str], Account | None],
) -> tuple[int | None, throttle.Reservation, bool]:
    """An applicant's password check under the login limits: (the account's id or None, the
    reservation to give back on a right password, whether it was right). Raises throttle.Throttled."""

    def prepare(session: Session) -> tuple[int | None, throttle.Reservation, str | None]:
        reservation = throttle.reserve_login(session, account_id, client)
        account = find(session, account_id)
        if account is None:
            return None, reservation, None
        return account.id, reservation, account.password_hash

    return throttle.check(db, prepare, password)


def log_in(db: Database, account_id: str, password: str, client: str | None) -> LoginResult:
    """The outcome of one login attempt; each step commits its own short transaction."""

    try:
        found, reservation, ok = check_password(db, account_id, password, client, _find)
    except throttle.Throttled as exc:
        return throttled(exc.retry_after)
    if not ok or found is None:
        return LoginResult(401, {"error": MSG_BAD_CREDENTIALS})
    with writer_turn(db), db.session() as session:
        account = session.get(Account, found)
        if account is None:
            return LoginResult(401, {"error": MSG_BAD_CREDENTIALS})
        # The holder knows the password: a reset link mailed before is void (issue 14).
        void_tokens(session, account.id, TokenPurpose.PASSWORD_RESET)
        if needs_rehash(account.password_hash):  # made with older argon2 parameters: upgrade it now
            account.password_hash = hash_password(password)
        reason = refusal(account)
        companies = [] if reason else companies_of(session, account)
        body = {"error": reason} if reason else {
            "account": account.account, "kind": account.kind, "companies": companies,
            "active_ubn": active_ubn_of(session, account, companies)}
        throttle.give_back(session, reservation)  # last: its rows stay locked until the commit
    if reason:
        return LoginResult(403, body)
    return LoginResult(200, body, account, companies)
