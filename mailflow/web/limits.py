"""What a request may be before any route reads it: RequestLimits, one pure ASGI middleware, and ROUTES,
the table of what each route may receive.

- Its URL: no NUL, raw or as %00, in the path or the query string. PostgreSQL refuses NUL in text, and a
  streamed answer (the support CSV) must not find that out half way. 400.
- Its size: at most the route's limit, refused from Content-Length before a byte is read, and again while
  the body streams (chunked, or a Content-Length that lies). 413.
- Its pace: a body must arrive within BODY_SECONDS plus one second per MIN_BYTES_PER_SECOND received
  (Apache mod_reqtimeout's body=20,MinRate=500), so one byte every few seconds cannot hold a worker. 408.
- Its type: each route names the media types it parses. A JSON route takes only application/json, which
  no cross-site form can send without a CORS preflight: that is the JSON API's CSRF defence. 415.
- Its text: a JSON body nests at most MAX_JSON_DEPTH deep and holds no NUL and no lone surrogate (neither
  can be stored or encoded; a body that is no JSON at all is the route's to answer); a form body holds no
  NUL. Multipart bodies that carry a
  file (the registration's document) are binary and not scanned: the registration rules refuse control
  characters in each of their text fields. 400.

A refusal answers in the route's language: ``{"error": zh-TW}`` on API paths, a zh-TW page elsewhere, with
``Connection: close`` since the rest of the body is never read. A route that declares ``own_size_answer``
(the registration, whose 413 names the document field) is called instead and meets BodyRefused on its
first read; whatever another route answers after its body was refused is replaced by the refusal (FastAPI
turns any error while reading a form into its own 400).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.accounts.rules import document_limit_text
from mailflow.web.home import error_page

KiB = 1024
# Logins, switches, one-line forms and every JSON API body not listed below.
SMALL_BYTES = 16 * KiB
# A review decision: a 5,000-character note, percent-encoded (a CJK character is 9 bytes: %E4%B8%AD).
REVIEW_BYTES = 64 * KiB
# A support note: up to 20,000 characters, percent-encoded.
NOTE_BYTES = 256 * KiB
# The registration: storage.max_document_bytes plus room for the text fields and the multipart framing.
FORM_OVERHEAD_BYTES = 256 * KiB

BODY_SECONDS = 20.0
MIN_BYTES_PER_SECOND = 500
MAX_JSON_DEPTH = 32

JSON_TYPES = frozenset({"application/json"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLOSE_HEADER = (b"connection", b"close")  # the unread rest of a refused body ends the connection

MSG_TOO_LARGE = "送出的資料太大(上限 {limit}),請縮小後再送出。"
MSG_TOO_SLOW = "資料傳送逾時,請檢查網路連線後重新送出。"
MSG_JSON_TYPE = "請以 JSON 格式送出(Content-Type: application/json)。"
MSG_FORM_TYPE = "表單格式不正確,請重新整理頁面後再送出。"
MSG_NUL = "網址或資料含有不允許的控制字元(NUL),請移除後再送出。"
MSG_API_FORM_TYPE = "請以 multipart/form-data 或 application/x-www-form-urlencoded 格式送出。"
MSG_DEEP_JSON = f"JSON 巢狀層數過多(最多 {MAX_JSON_DEPTH} 層)。"
MSG_SURROGATE = "資料含有無效的 Unicode 字元(單獨的代理字元),請移除後再送出。"


@dataclass(frozen=True)
class Rule:
    """What one route (a method and a path pattern) may receive. ``max_bytes`` None means the
    registration's limit, storage.max_document_bytes + FORM_OVERHEAD_BYTES."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    max_bytes: int | None
    types: frozenset[str]
    files: bool = False  # its multipart bodies carry binary files: no NUL scan of them
    own_size_answer: bool = False  # the route answers its 413 itself (see the module docstring)


def rule(methods: str, path: str, max_bytes: int | None, types: Iterable[str], *, files: bool = False,
         own_size_answer: bool = False) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(path), max_bytes, frozenset(types), files,
                own_size_answer)


# First match wins. Paths are full matches; an id is one or more digits (the route refuses what no row
# can have). Anything not listed: SMALL_BYTES, and for POST/PUT/PATCH JSON under /api/, a form elsewhere.
ROUTES: tuple[Rule, ...] = (
    rule("POST", r"/api/applications", None, FORM_TYPES, files=True, own_size_answer=True),
    rule("POST", r"/register", None, FORM_TYPES, files=True, own_size_answer=True),
    rule("POST", r"/api/shared-accounts", SMALL_BYTES, JSON_TYPES | FORM_TYPES),  # "like applications"
    rule("POST", r"/review/applications/[0-9]+/(approve|reject)", REVIEW_BYTES, FORM_TYPES),
    rule("POST", r"/support/items/[0-9]+/note", NOTE_BYTES, FORM_TYPES),
    rule("POST PUT PATCH", r"/api/.*", SMALL_BYTES, JSON_TYPES),
    rule("POST PUT PATCH", r".*", SMALL_BYTES, FORM_TYPES),
)
# GET, HEAD, DELETE, OPTIONS: no route reads their body, which may not be large either.
NO_BODY_RULE = rule("GET", r".*", SMALL_BYTES, ())


def rule_for(method: str, path: str) -> Rule:
    if method in BODY_METHODS:
        for candidate in ROUTES:
            if method in candidate.methods and candidate.pattern.fullmatch(path):
                return candidate
    return NO_BODY_RULE


def size_text(size: int) -> str:
    """A byte count as people read it ('16 KB', '10.3 MB'), worded like the document limit."""
    return document_limit_text(size)


class BodyRefused(Exception):
    """The request (body) broke a limit: ``status`` 400/408/413/415 and the zh-TW ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


def is_api_path(path: str) -> bool:
    """A machine's address, answered in JSON: /api/… and the developer mailbox's /dev/mailbox/api/…"""
    return path.startswith("/api/") or path == "/api" or "/api/" in path


def refusal_response(scope: Scope, refused: BodyRefused) -> Response:
    headers = {"Connection": "close"}
    if is_api_path(scope.get("path", "")):
        return JSONResponse({"error": refused.message}, status_code=refused.status, headers=headers)
    page = error_page(Request(scope), refused.status, refused.message)
    page.headers.update(headers)
    return page


# --- the URL and the head -----------------------------------------------------------------------------


def check_url(scope: Scope) -> None:
    raw_path = scope.get("raw_path") or b""
    query = scope.get("query_string") or b""
    if "\x00" in scope.get("path", "") or _has_nul(raw_path) or _has_nul(query):
        raise BodyRefused(400, MSG_NUL)


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


def media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def declared_length(scope: Scope) -> int | None:
    """Content-Length when the request has one (the server already refused a malformed one)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _has_body(scope: Scope) -> bool:
    length = declared_length(scope)
    if length is not None:
        return length > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", []))


def check_head(scope: Scope, route: Rule, limit: int) -> None:
    """Refusals that need no byte of the body: the media type, then the declared size."""
    kind = media_type(scope)
    if route.types and kind not in route.types:
        wants_json = route.types <= JSON_TYPES
        # A form route posted without any body (a bare logout button) needs no type; a JSON route always
        # does, since the type is what stops a cross-site form.
        if wants_json or kind or _has_body(scope):
            raise BodyRefused(415, _type_message(route, scope))
    length = declared_length(scope)
    if length is not None and length > limit:
        raise BodyRefused(413, MSG_TOO_LARGE.format(limit=size_text(limit)))


def _type_message(route: Rule, scope: Scope) -> str:
    if route.types <= JSON_TYPES:
        return MSG_JSON_TYPE
    return MSG_API_FORM_TYPE if is_api_path(scope.get("path", "")) else MSG_FORM_TYPE


# --- the body -----------------------------------------------------------------------------------------


class BodyGuard:
    """Wraps ``receive``: counts and times the body, scans form text for NUL, and raises BodyRefused (also
    remembered in ``refused``) the moment a limit breaks. After the last body chunk it stays out of the
    way: Starlette keeps calling receive() to notice a disconnect."""

    def __init__(self, receive: Receive, limit: int, scan_nul: bool, clock: Any = time.monotonic) -> None:
        self._receive = receive
        self.limit = limit
        self.scan_nul = scan_nul
        self.received = 0
        self.done = False
        self.refused: BodyRefused | None = None
        self._clock = clock
        self._started: float | None = None
        self._tail = b""

    def refuse(self, refused: BodyRefused) -> BodyRefused:
        self.refused = refused
        return refused

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        if self.done:
            return await self._receive()
        if self._started is None:
            self._started = self._clock()
        deadline = self._started + BODY_SECONDS + self.received / MIN_BYTES_PER_SECOND
        try:
            with anyio.fail_after(max(0.0, deadline - self._clock())):
                message = await self._receive()
        except TimeoutError:
            raise self.refuse(BodyRefused(408, MSG_TOO_SLOW)) from None
        if message["type"] != "http.request":
            self.done = True
            return message
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.limit:
            raise self.refuse(BodyRefused(413, MSG_TOO_LARGE.format(limit=size_text(self.limit))))
        if self.scan_nul:
            window = self._tail + chunk
            if _has_nul(window):
                raise self.refuse(BodyRefused(400, MSG_NUL))
            self._tail = window[-2:]
        if not message.get("more_body", False):
            self.done = True
        return message

    async def read_all(self) -> bytes:
        parts = []
        while not self.done:
            message = await self.receive()
            if message["type"] != "http.request":
                break
            parts.append(message.get("body", b""))
        return b"".join(parts)


def check_json(body: bytes) -> None:
    """A JSON body nests at most MAX_JSON_DEPTH deep and holds no text that cannot be stored: raises
    BodyRefused(400) otherwise. A body that is no JSON at all is left to the route, which answers which
    fields it needs (422), as it does for JSON of the wrong shape."""
    if not body.strip():
        return
    try:
        data = json.loads(body)
    except RecursionError:  # the C scanner recurses per level: 100,000 '[' would end the request
        raise BodyRefused(400, MSG_DEEP_JSON) from None
    except ValueError:  # also UnicodeDecodeError: the route answers what it expected, in its words
        return
    check_json_value(data)


def check_json_value(data: Any) -> None:
    """Depth, NUL and lone surrogates in every key and string, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BodyRefused(400, MSG_DEEP_JSON)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise BodyRefused(400, MSG_NUL)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyRefused(400, MSG_SURROGATE) from None


def _replay(body: bytes, guard: BodyGuard) -> Receive:
    """A receive() that hands the app the body already read, then the real receive (disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await guard.receive()

    return receive


class RequestLimits:
    """Pure ASGI middleware applying ROUTES (see the module docstring). ``document_bytes`` is
    storage.max_document_bytes."""

    def __init__(self, app: ASGIApp, document_bytes: int) -> None:
        self.app = app
        self.document_bytes = document_bytes

    def limit_of(self, route: Rule) -> int:
        return self.document_bytes + FORM_OVERHEAD_BYTES if route.max_bytes is None else route.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in BODY_METHODS and not _has_body(scope):
            # The common case (a page, a GET of the API): only the URL to check, no wrapper in the way.
            try:
                check_url(scope)
            except BodyRefused as refused:
                await refusal_response(scope, refused)(scope, _drain_nothing, send)
                return
            await self.app(scope, receive, send)
            return
        route = rule_for(scope["method"], scope.get("path", ""))
        limit = self.limit_of(route)
        kind = media_type(scope)
        scan_nul = kind == URLENCODED or (kind == MULTIPART and not route.files)
        guard = BodyGuard(receive, limit, scan_nul)
        try:
            check_url(scope)
            check_head(scope, route, limit)
            app_receive: Receive = guard.receive
            if kind in JSON_TYPES and kind in route.types:  # small by now: read, check, hand on
                body = await guard.read_all()
                check_json(body)
                app_receive = _replay(body, guard)
        except BodyRefused as refused:
            if not (route.own_size_answer and refused.status == 413):
                await refusal_response(scope, refused)(scope, _drain_nothing, send)
                return
            guard.refuse(refused)  # the route reads, meets it and answers in its own words
            app_receive = guard.receive
        await self._call_app(scope, app_receive, send, guard, route.own_size_answer)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send, guard: BodyGuard,
                        own_size_answer: bool) -> None:
        started = False
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            refused = guard.refused
            if refused is not None and not started and message["type"] == "http.response.start":
                if own_size_answer and refused.status == 413 == message.get("status"):  # in its own words
                    started = True
                    await send({**message, "headers": [*message.get("headers", []), CLOSE_HEADER]})
                    return
                replaced = True
                await refusal_response(scope, refused)(scope, _drain_nothing, send)
                return
            if replaced:
                return  # the app's own answer to a refused body is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except BodyRefused as refused:
            if not started and not replaced:
                await refusal_response(scope, refused)(scope, _drain_nothing, send)


async def _drain_nothing() -> Message:
    """The receive() given to a refusal's own Response: it never needs the request body."""
    return {"type": "http.disconnect"}
