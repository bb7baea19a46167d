"""The signed session cookies both audiences use (issue 16 item 4): ``mf_staff`` (mailflow.web.staff_auth)
and ``mf_session`` (mailflow.web.applicant_auth). Each carries a row id and a fingerprint of what ends the
session (a password hash, a session generation, ...): a change to any of those voids every cookie made
before it. Only HTTP lives here; who may have a session is each audience's own module."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

from mailflow.config import Settings
from mailflow.web.security import sign, unsign


def password_fingerprint(password_hash: str) -> str:
    """Part of a session cookie: a new password changes it, which ends every older session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def set_login_cookie(response: Response, settings: Settings, cookie: str, salt: str, row_id: int,
                     password_hash: str) -> None:
    """A signed session cookie (staff or applicant): HttpOnly, SameSite=Lax, Secure on https, expiring
    after security.session_ttl_hours."""
    response.set_cookie(
        cookie,
        sign(settings, salt, {"id": row_id, "v": password_fingerprint(password_hash)}),
        max_age=int(settings.security.session_ttl_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.http.base_url.startswith("https"),
        path="/",
    )


def read_login_cookie(request: Request, cookie: str, salt: str) -> tuple[int, str] | None:
    """(row id, password fingerprint) from a valid, unexpired session cookie."""
    settings: Settings = request.app.state.ctx.settings
    data = unsign(settings, salt, request.cookies.get(cookie), settings.security.session_ttl_hours * 3600)
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return None
    return data["id"], str(data.get("v"))
