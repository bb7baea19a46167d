"""Signed cookies (sessions) and CSRF tokens for every HTML form, and the ASGI middleware that puts the
security headers and a freshly minted CSRF cookie on every response.

CSRF uses a signed double-submit token: a random value in a SameSite=Strict cookie, repeated in a hidden
form field; both must match and carry our signature. The token is ``<nonce>.<issued>.<mac>``: a random
nonce, the issue time (unix seconds, base 36) and HMAC-SHA256 over both with a key derived for CSRF
alone, so it expires and no other signed value of ours can stand in for it. The MAC also covers the
request's session cookies named by ``bind_csrf_to`` (the staff session): a token minted outside that
session — by an attacker who can plant cookies from a sibling subdomain, or before a login — does not
pass inside it, so a signed-in staff member's token is good for that session only. The JSON API needs no
token: it takes only application/json (mailflow.web.limits), which no cross-site form can send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from functools import lru_cache
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
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

# Every HTML page: our own scripts, styles (the templates use <style> blocks and style attributes) and
# images only. frame-ancestors 'self' like X-Frame-Options: the review page frames its document, whose
# "not found" page should still show inside that frame.
PAGE_CSP = "; ".join((
    "default-src 'self'",
    "img-src 'self' data:",
    "style-src 'self' 'unsafe-inline'",
    "script-src 'self'",  # no inline script or handler anywhere: confirmations live in /static/confirm.js
    "object-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
    "form-action 'self'",
))
# Staff pages show names, phones and e-mail addresses: no copy may stay in a browser or proxy cache.
STAFF_PREFIXES = ("/review", "/support", "/staff")


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


@lru_cache(maxsize=8)
def _csrf_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"mailflow-csrf", hashlib.sha256).digest()


def _csrf_mac(settings: Settings, signed_part: str, session: str = "") -> str:
    digest = hmac.new(_csrf_key(settings.security.secret_key), signed_part.encode("ascii"), hashlib.sha256)
    if session:
        digest.update(b"|" + session.encode("ascii"))
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode("ascii")


def mint_csrf(settings: Settings, at: float | None = None, session: str = "") -> str:
    """A fresh CSRF token, bound to ``session`` (see csrf_session) when given. Hand-made rather than
    itsdangerous: it is signed on every form page, and the JSON+zlib round of a serializer was a tenth
    of the /verify page's time."""
    issued = int(time.time() if at is None else at)
    signed_part = f"{secrets.token_urlsafe(16)}.{_base36(issued)}"
    return f"{signed_part}.{_csrf_mac(settings, signed_part, session)}"


def csrf_valid(settings: Settings, value: str | None, session: str = "") -> bool:
    """Our signature (for ``session``) holds and the token is younger than CSRF_MAX_AGE_SECONDS."""
    if not value or len(value) > 200 or value.count(".") != 2:
        return False
    signed_part, _, mac = value.rpartition(".")
    if not hmac.compare_digest(_csrf_mac(settings, signed_part, session), mac):
        return False
    try:
        issued = int(signed_part.rpartition(".")[2], 36)
    except ValueError:
        return False
    return 0 <= time.time() - issued <= CSRF_MAX_AGE_SECONDS


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if number == 0:
            return digits


def bind_csrf_to(app: Any, cookie: str) -> None:
    """Bind every CSRF token to the value of session cookie ``cookie`` whenever a request carries it
    (the hook staff sign-in installs for ``mf_staff``)."""
    app.state.csrf_session_cookies = (*getattr(app.state, "csrf_session_cookies", ()), cookie)


def csrf_session(request: Request) -> str:
    """What the request's tokens are bound to: a digest of the session cookies named by bind_csrf_to
    that it carries, "" when it carries none. The cookie's own value rather than a row id: it changes at
    every sign-in, and reading it costs no query."""
    names: tuple[str, ...] = getattr(request.app.state, "csrf_session_cookies", ())
    values = [f"{name}={request.cookies[name]}" for name in names if request.cookies.get(name)]
    if not values:
        return ""
    return hashlib.sha256("\n".join(values).encode("utf-8", "replace")).hexdigest()


def csrf_token(request: Request) -> str:
    """The token for forms on this page; SecurityHeaders sets the cookie when it is new."""
    settings: Settings = request.app.state.ctx.settings
    session = csrf_session(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and csrf_valid(settings, cookie, session):
        return cookie
    fresh = getattr(request.state, NEW_CSRF_STATE, None)
    if fresh is None:
        fresh = mint_csrf(settings, session=session)
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


def csrf_ok(request: Request, submitted: object) -> bool:
    """Whether the form's token is the request's valid CSRF cookie. What a form sends is anything: a file
    part of that name, or text that is not ASCII (compare_digest takes no such str), is simply wrong."""
    settings: Settings = request.app.state.ctx.settings
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(submitted, str) or not submitted:
        return False
    if not csrf_valid(settings, cookie, csrf_session(request)):
        return False
    return hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"),
                               submitted.encode("utf-8", "surrogateescape"))


def csrf_cookie_header(value: str, secure: bool) -> bytes:
    """The Set-Cookie value for a fresh CSRF token (HttpOnly, SameSite=Strict, whole site; Secure behind
    https). Written out by hand: the token is URL-safe base64 and a dot, nothing to quote, and building it
    through http.cookies on every form page was measurable."""
    if not _COOKIE_SAFE.issuperset(value):
        raise ValueError("a CSRF token is URL-safe base64")
    attributes = "; HttpOnly; Path=/; SameSite=strict" + ("; Secure" if secure else "")
    return f"{CSRF_COOKIE}={value}{attributes}".encode("ascii")


_COOKIE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


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
                _add_page_policy(raw, present)
                if is_staff_path(scope.get("path", "")):
                    _forbid_caching(raw)
                fresh = scope.get("state", {}).get(NEW_CSRF_STATE)
                if fresh:
                    raw.append((b"set-cookie", csrf_cookie_header(str(fresh), self.secure_cookies)))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_page_policy(raw: list[tuple[bytes, bytes]], present: set[bytes]) -> None:
    """PAGE_CSP on an HTML answer without a policy of its own (a mail's HTML keeps its stricter one)."""
    if b"content-security-policy" in present:
        return
    content_type = next((value for name, value in raw if name.lower() == b"content-type"), b"")
    if content_type.lower().startswith(b"text/html"):
        raw.append((b"content-security-policy", _PAGE_CSP_BYTES))


def is_staff_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in STAFF_PREFIXES)


def _forbid_caching(raw: list[tuple[bytes, bytes]]) -> None:
    """no-store on a staff answer; a route's own Cache-Control stays when it already says no-store."""
    current = [value for name, value in raw if name.lower() == b"cache-control"]
    if any(b"no-store" in value.lower() for value in current):
        return
    raw[:] = [pair for pair in raw if pair[0].lower() != b"cache-control"]
    raw.append((b"cache-control", b"no-store"))


_PAGE_CSP_BYTES = PAGE_CSP.encode("latin-1")
