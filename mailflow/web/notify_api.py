"""The Notifications API (/api/v1): send a notification, read its status, read the event feed. Every
route takes an API key (``Authorization: Bearer mf_…``) with the scope it needs; the domain lives in
mailflow.notify, this module only translates HTTP."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mailflow.models import ApiScope
from mailflow.models.base import MAX_ROW_ID
from mailflow.notify import apikeys, events, notifications
from mailflow.notify.apikeys import ApiRefusal, Caller
from mailflow.notify.notifications import NotificationRefused
from mailflow.web.deps import RowId, app_ctx

router = APIRouter(prefix="/api/v1", tags=["notifications"])

# Documents the scheme in /api/docs; the header is read by ``authorize`` itself, so a missing or
# malformed one gets the API's own 401 answer.
_BEARER = HTTPBearer(auto_error=False, description="mailflow apikey add NAME --scope notify|events")
MAX_BODY_BYTES = 64 * 1024


class Refused(Exception):
    """An answer that ends the request early: ``status`` and its JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def install(app: Any) -> None:
    """The router and the one handler that turns Refused into its JSON answer."""
    app.include_router(router)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _caller(scope: str) -> Any:
    async def dependency(request: Request, _credentials: Credentials) -> Caller:
        ctx = app_ctx(request)
        presented = apikeys.bearer(request.headers.get("authorization"))
        try:
            return await run_in_threadpool(apikeys.authorize, ctx.db, ctx.settings, presented, scope,
                                           request.method, request.url.path, _client(request))
        except ApiRefusal as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            raise Refused(exc.status, {"error": exc.message}, headers) from None

    return dependency


NotifyCaller = Annotated[Caller, Depends(_caller(ApiScope.NOTIFY))]
EventsCaller = Annotated[Caller, Depends(_caller(ApiScope.EVENTS))]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(413, {"error": f"請求內容過大(上限 {MAX_BODY_BYTES // 1024} KiB)"})
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused(422, {"errors": {"request": "請以 JSON 送出請求內容"}}) from None


_STRING = {"type": "string"}
NOTIFICATION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["template", "personalisation"], "additionalProperties": False,
        "properties": {
            "template": {**_STRING, "examples": ["pass-issued"]},
            "account": {**_STRING, "description": "a 帳號: its verified address is used (or email_address)"},
            "email_address": {**_STRING, "format": "email"},
            "personalisation": {"type": "object", "additionalProperties": _STRING,
                                "description": "exactly the keys of the template's meta.toml"},
            "reference": {**_STRING, "maxLength": 200},
        }}}},
}
IDEMPOTENCY_HEADER = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": _STRING,
                      "description": "the same key and body within 24 h answer the first result"}


@router.post("/notifications", status_code=201,
             openapi_extra={"requestBody": NOTIFICATION_BODY, "parameters": [IDEMPOTENCY_HEADER]})
async def create_notification(request: Request, caller: NotifyCaller) -> JSONResponse:
    """Send a mail template to a 帳號's verified address or to an address (see the README)."""
    body = await _json_body(request)
    ctx = app_ctx(request)
    try:
        key = notifications.check_idempotency_key(request.headers.get("idempotency-key"))
        parsed = notifications.parse_request(body)
        accepted = await run_in_threadpool(notifications.send, ctx.db, ctx.settings, caller, parsed, key)
    except NotificationRefused as exc:
        return JSONResponse(exc.body, status_code=exc.status)
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else {}
    return JSONResponse(accepted.body, status_code=201, headers=headers)


def _int(value: str | None, name: str, least: int = 0, most: int | None = None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise Refused(422, {"errors": {name: "必須是非負整數"}})
    number = int(value)
    if number < least or (most is not None and number > most):
        raise Refused(422, {"errors": {name: f"必須介於 {least} 與 {most} 之間"}})
    return number


@router.get("/notifications/{notification_id}")
def read_notification(notification_id: RowId, request: Request, caller: NotifyCaller) -> JSONResponse:
    """One notification's status, with the bounce (hard, reason, status) when one came back. An id no
    row can have is refused (404) by the one path-id type before any query."""
    with app_ctx(request).db.session() as session:
        found = notifications.get(session, notification_id)
    if found is None:
        return JSONResponse({"error": "查無此通知"}, status_code=404)
    return JSONResponse(found)


@router.get("/notifications")
def list_notifications(request: Request, caller: NotifyCaller, reference: str | None = None,
                       status: str | None = None, after: str | None = None,
                       limit: str | None = None) -> JSONResponse:
    """Notifications oldest first, filtered by reference and status; pass ``next`` as ``after``."""
    if status is not None and status not in notifications.STATUSES:
        raise Refused(422, {"errors": {"status": "必須是 " + ", ".join(notifications.STATUSES) + " 之一"}})
    if reference is not None and len(reference) > notifications.MAX_REFERENCE:
        raise Refused(422, {"errors": {"reference": "reference 過長"}})
    start = _int(after, "after", 0, MAX_ROW_ID) or 0  # a notification id: an INTEGER column
    size = _int(limit, "limit", 1, notifications.PAGE_MAX) or notifications.PAGE_DEFAULT
    with app_ctx(request).db.session() as session:
        return JSONResponse(notifications.page(session, after=start, reference=reference, status=status,
                                               limit=size))


FEED_DEFAULT, FEED_MAX = 100, 1000


@router.get("/events")
def event_feed(request: Request, caller: EventsCaller, after: str | None = None,
               limit: str | None = None) -> JSONResponse:
    """The events, oldest first, after the cursor ``after``; pass the answer's ``cursor`` next time."""
    start = _int(after, "after") or 0
    size = _int(limit, "limit", 1, FEED_MAX) or FEED_DEFAULT
    db = app_ctx(request).db
    events.sequence_pending(db)
    with db.session() as session:
        found = events.events_after(session, start, size)
    cursor = str(found[-1].seq) if found else str(start)
    return JSONResponse({"events": [event.body() for event in found], "cursor": cursor,
                         "has_more": len(found) == size})
