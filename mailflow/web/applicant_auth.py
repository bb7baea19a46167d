"""The applicant's session: the signed ``mf_session`` cookie set by POST /api/session and read by every
applicant route (``current_account``). The cookie carries the account id and a fingerprint of its
password hash, so a password change ends old sessions; a login gate refusal (e.g. the account was
suspended, or its address changed and is no longer verified) ends it too."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from sqlalchemy.orm import Session

from mailflow.accounts.login import refusal
from mailflow.config import Settings
from mailflow.models import Account
from mailflow.web.security import sign, unsign

SESSION_COOKIE = "mf_session"
SESSION_SALT = "applicant-session"


def _fingerprint(account: Account) -> str:
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def set_session_cookie(response: Response, settings: Settings, account: Account) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sign(settings, SESSION_SALT, {"id": account.id, "v": _fingerprint(account)}),
        max_age=int(settings.security.session_ttl_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.http.base_url.startswith("https"),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def current_account(request: Request, session: Session) -> Account | None:
    """The logged-in applicant (approved and verified), or None."""
    settings: Settings = request.app.state.ctx.settings
    data = unsign(settings, SESSION_SALT, request.cookies.get(SESSION_COOKIE),
                  settings.security.session_ttl_hours * 3600)
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return None
    account = session.get(Account, data["id"])
    if account is None or data.get("v") != _fingerprint(account) or refusal(account) is not None:
        return None
    return account
