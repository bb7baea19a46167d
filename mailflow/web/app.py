"""The FastAPI application: one router per audience, mounted on the shared AppContext."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.paths import STATIC_DIR
from mailflow.web import (
    apidocs,
    applicant,
    devmailbox,
    health,
    home,
    metrics,
    notify_api,
    review,
    selfservice,
    shared,
    staff_auth,
    support,
    verify,
)
from mailflow.web.limits import RequestLimits, is_api_path
from mailflow.web.loopreads import open_loop_reads
from mailflow.web.pages import render
from mailflow.web.security import SecurityHeaders

log = logging.getLogger(__name__)


def create_app(ctx: AppContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opened here, on the loop that serves: an async pool belongs to the loop it was made on.
        reads = app.state.loop_reads = await open_loop_reads(ctx.db)
        try:
            yield
        finally:
            app.state.loop_reads = None
            if reads is not None:
                await reads.close()

    app = FastAPI(title="mailflow", version="0.1.0", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.ctx = ctx
    # Routes are matched in order, one by one: the verification link, the most opened page, goes first.
    for module in (verify, health, metrics, applicant, shared, selfservice, review, support, home):
        app.include_router(module.router)
    notify_api.install(app)  # /api/v1: the Notifications API for the rest of the pass system
    apidocs.install(app)  # /api/docs with Swagger UI served from here (the CSP allows no CDN)
    staff_auth.install(app)  # /staff/login, /staff/logout and the login-required / forbidden answers
    if ctx.settings.smtp.mode == "capture":
        app.include_router(devmailbox.router)
    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    # Inner first: the size, pace, type and text of every request are checked before any route runs,
    # and the refusals still get the security headers.
    app.add_middleware(RequestLimits, document_bytes=ctx.settings.storage.max_document_bytes)
    app.add_middleware(SecurityHeaders, secure_cookies=ctx.settings.http.base_url.startswith("https"))

    @app.exception_handler(RequestValidationError)
    async def validation_errors(request: Request, exc: RequestValidationError) -> Response:
        # A path id no row can have (not a number, 0, beyond the id columns) names nothing: 404.
        if exc.errors() and all(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
            if is_api_path(request.url.path):
                return JSONResponse({"error": NOT_FOUND}, status_code=404)
            return home.error_page(request, 404)
        # The JSON API answers every refusal in its documented shape, even one FastAPI makes itself:
        # {"errors": {field: zh-TW message}}; a form gets a zh-TW page.
        if is_api_path(request.url.path):
            fields = {str(error["loc"][-1]): "格式不正確" for error in exc.errors() if error.get("loc")}
            return JSONResponse({"errors": fields or {"request": "請求格式不正確"}}, status_code=422)
        return home.error_page(request, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_errors(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown API routes and wrong methods answer like every other API refusal: {"error": zh-TW};
        # a person who typed or followed a wrong address gets a zh-TW page with the way back.
        if is_api_path(request.url.path):
            detail = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else ""
            message = detail or HTTP_MESSAGES.get(exc.status_code, "請求無法處理")
            return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code < 400:
            return await http_exception_handler(request, exc)
        page = home.error_page(request, exc.status_code, str(exc.detail or ""))
        page.headers.update(exc.headers or {})
        return page

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> Response:
        # The database went away mid-request (a restart, a network cut): the transaction rolled back,
        # so nothing was stored. Say so and when to retry, instead of a bare 500.
        # The route's template, never the path: /verify/{token} and others carry secrets (issue 13).
        log.warning("database unavailable during %s %s: %s", request.method, route_template(request),
                    type(exc.orig).__name__)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if is_api_path(request.url.path):
            return JSONResponse({"error": UNAVAILABLE}, status_code=503, headers=headers)
        page = render(request, "unavailable.html", status_code=503, message=UNAVAILABLE)
        page.headers.update(headers)
        return page

    return app


# How soon a client may try again after the database was unavailable.
RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "系統暫時無法使用,資料沒有被儲存,請稍後再試"
HTTP_MESSAGES = {404: "找不到此 API", 405: "此 API 不接受這個 HTTP 方法"}
NOT_FOUND = "找不到您要的資料,請確認網址或編號是否正確。"


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the proxy headers: the peers named in http.forwarded_allow_ips (else in
    uvicorn's own FORWARDED_ALLOW_IPS variable) are believed; none otherwise — uvicorn's default would
    believe 127.0.0.1, letting anything on the host claim any client address (issue 13 finding 4)."""
    trusted = settings.http.forwarded_allow_ips.strip() or os.environ.get("FORWARDED_ALLOW_IPS", "").strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def route_template(request: Request) -> str:
    """The path as the router names it (``/verify/{token}``), for logs: a secret in a path stays out."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else "(unrouted path)"
