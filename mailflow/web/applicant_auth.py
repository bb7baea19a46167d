"""The applicant's session: the signed ``mf_session`` cookie set by POST /api/session and read by every
applicant route (``current_account``). The cookie carries the account id and a fingerprint of the
account's password hash, its address and its session generation, so a password change, an email
correction (mailflow.support.actions.correct_email) and a logout (``end_sessions``) each end the old
sessions; a login gate refusal (e.g. the account was suspended, or its address is no longer verified)
ends it too."""

from __future__ import annotations

import logging

from fastapi import Request, Response
from sqlalchemy.orm import Session

from mailflow.accounts.login import refusal
from mailflow.config import Settings
from mailflow.models import Account
from mailflow.web.sessions import password_fingerprint, read_login_cookie, set_login_cookie

log = logging.getLogger(__name__)

SESSION_COOKIE = "mf_session"
SESSION_SALT = "applicant-session"


def _session_secret(account: Account) -> str:
    """What the cookie's fingerprint is made of: a change to any part voids every cookie made before it.
    The cookie is the only session state, so this is how the server takes a session back."""
    return f"{account.password_hash}|{account.email_key}|{account.session_generation}"


def set_session_cookie(response: Response, settings: Settings, account: Account) -> None:
    set_login_cookie(response, settings, SESSION_COOKIE, SESSION_SALT, account.id, _session_secret(account))


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _cookie_account(request: Request, session: Session) -> Account | None:
    """The account whose still-valid session cookie came with the request, whatever its login state."""
    found = read_login_cookie(request, SESSION_COOKIE, SESSION_SALT)
    if found is None:
        return None
    account = session.get(Account, found[0])
    if account is None or found[1] != password_fingerprint(_session_secret(account)):
        return None
    return account


def current_account(request: Request, session: Session) -> Account | None:
    """The logged-in applicant (approved and verified), or None."""
    account = _cookie_account(request, session)
    return account if account is not None and refusal(account) is None else None


def end_sessions(request: Request, session: Session) -> None:
    """Logout: the request's session, and with it every other session of that account (every device),
    stops working, even if someone kept a copy of the cookie. Without a valid cookie there is nothing to
    end. The caller clears the cookie and commits."""
    account = _cookie_account(request, session)
    if account is None:
        return
    account.session_generation += 1
    session.flush()
    log.info("applicant %s logged out; generation now %s", account.id, account.session_generation)
