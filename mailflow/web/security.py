"""Signed cookies (sessions) and CSRF tokens for every HTML form, and the ASGI middleware that puts the
security headers and a freshly minted CSRF cookie on every response.

CSRF uses a signed double-submit token: a random value in a SameSite=Strict cookie, repeated in a hidden
form field; both must match and carry our signature. JSON/multipart API routes that take no cookie
credentials need no token.
"""

from __future__ import annotations

import hmac
import secrets
from functools import lru_cache
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.config import Settings

CSRF_COOKIE = "mf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_SECONDS = 7 * 24 * 3600
# Where a request keeps the token it minted, for SecurityHeaders to set as a cookie (scope["state"] is
# the dict behind request.state).
NEW_CSRF_STATE = "new_csrf"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


@lru_cache(maxsize=64)
def _cached_serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt)


def serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    # Built once per key and salt: a serializer is stateless, and building one per request showed up
    # in the /verify profile.
    return _cached_serializer(settings.security.secret_key, salt)


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
    """The token for forms on this page; SecurityHeaders sets the cookie when it is new."""
    settings: Settings = request.app.state.ctx.settings
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and unsign(settings, "csrf", cookie, CSRF_MAX_AGE_SECONDS):
        return cookie
    fresh = getattr(request.state, NEW_CSRF_STATE, None)
    if fresh is None:
        fresh = sign(settings, "csrf", secrets.token_urlsafe(16))
        setattr(request.state, NEW_CSRF_STATE, fresh)
    return str(fresh)


class LazyCsrfToken:
    """csrf_token(request), worked out only when a template prints it: a page without a form neither
    signs a token nor sets the cookie."""

    __slots__ = ("_request", "_value")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = csrf_token(self._request)
        return self._value


def csrf_ok(request: Request, submitted: str | None) -> bool:
    settings: Settings = request.app.state.ctx.settings
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not unsign(settings, "csrf", cookie, CSRF_MAX_AGE_SECONDS):
        return False
    return hmac.compare_digest(cookie, submitted)


def csrf_cookie_header(value: str, secure: bool) -> bytes:
    """The Set-Cookie value for a fresh CSRF token, formatted by Starlette's own cookie code."""
    response = Response()
    response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict", secure=secure)
    return response.headers["set-cookie"].encode("latin-1")


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every HTTP response (a route's own value wins) and
    the CSRF cookie when the request minted a token.

    A plain ASGI class rather than @app.middleware("http"): Starlette's BaseHTTPMiddleware runs the app
    in a task group and re-streams the body, which cost about a third of the /verify page's time."""

    def __init__(self, app: ASGIApp, secure_cookies: bool) -> None:
        self.app = app
        self.secure_cookies = secure_cookies
        self._defaults = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                          for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw.extend(pair for pair in self._defaults if pair[0] not in present)
                fresh = scope.get("state", {}).get(NEW_CSRF_STATE)
                if fresh:
                    raw.append((b"set-cookie", csrf_cookie_header(str(fresh), self.secure_cookies)))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
