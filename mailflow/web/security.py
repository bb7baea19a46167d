"""Signed cookies (sessions) and CSRF tokens for every HTML form.

CSRF uses a signed double-submit token: a random value in a SameSite=Strict cookie, repeated in a hidden
form field; both must match and carry our signature. JSON/multipart API routes that take no cookie
credentials need no token.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mailflow.config import Settings

CSRF_COOKIE = "mf_csrf"
CSRF_FIELD = "csrf_token"


def serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.security.secret_key, salt=salt)


def sign(settings: Settings, salt: str, payload: Any) -> str:
    return serializer(settings, salt).dumps(payload)


def unsign(settings: Settings, salt: str, value: str | None, max_age_seconds: float) -> Any | None:
    if not value:
        return None
    try:
        return serializer(settings, salt).loads(value, max_age=int(max_age_seconds))
    except BadSignature:
        return None


def csrf_token(request: Request) -> str:
    """The token for forms on this page; the middleware sets the cookie when it is new."""
    settings: Settings = request.app.state.ctx.settings
    existing = unsign(settings, "csrf", request.cookies.get(CSRF_COOKIE), 7 * 24 * 3600)
    if existing:
        return request.cookies[CSRF_COOKIE]
    fresh = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = sign(settings, "csrf", secrets.token_urlsafe(16))
        request.state.new_csrf = fresh
    return str(fresh)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    settings: Settings = request.app.state.ctx.settings
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not unsign(settings, "csrf", cookie, 7 * 24 * 3600):
        return False
    return hmac.compare_digest(cookie, submitted)
