"""The applicant's session: the signed ``mf_session`` cookie set by POST /api/session and read by every
applicant route (``current_account``). The cookie carries the account id and a fingerprint of its
password hash, so a password change ends old sessions; a login gate refusal (e.g. the account was
suspended, or its address changed and is no longer verified) ends it too."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session

from mailflow.accounts.login import refusal
from mailflow.config import Settings
from mailflow.models import Account
from mailflow.web.staff_auth import password_fingerprint, read_login_cookie, set_login_cookie

SESSION_COOKIE = "mf_session"
SESSION_SALT = "applicant-session"


def set_session_cookie(response: Response, settings: Settings, account: Account) -> None:
    set_login_cookie(response, settings, SESSION_COOKIE, SESSION_SALT, account.id, account.password_hash)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def current_account(request: Request, session: Session) -> Account | None:
    """The logged-in applicant (approved and verified), or None."""
    found = read_login_cookie(request, SESSION_COOKIE, SESSION_SALT)
    if found is None:
        return None
    account = session.get(Account, found[0])
    if account is None or found[1] != password_fingerprint(account.password_hash):
        return None
    return account if refusal(account) is None else None
