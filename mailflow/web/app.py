"""The FastAPI application: one router per audience, mounted on the shared AppContext."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailflow.context import AppContext
from mailflow.paths import STATIC_DIR
from mailflow.web import applicant, devmailbox, health, metrics, review, shared, staff_auth, support, verify
from mailflow.web.loopreads import open_loop_reads
from mailflow.web.security import SecurityHeaders


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

    app = FastAPI(title="mailflow", version="0.1.0", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.ctx = ctx
    # Routes are matched in order, one by one: the verification link, the most opened page, goes first.
    for module in (verify, health, metrics, applicant, shared, review, support):
        app.include_router(module.router)
    staff_auth.install(app)  # /staff/login, /staff/logout and the login-required / forbidden answers
    if ctx.settings.smtp.mode == "capture":
        app.include_router(devmailbox.router)
    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    app.add_middleware(SecurityHeaders, secure_cookies=ctx.settings.http.base_url.startswith("https"))

    @app.exception_handler(RequestValidationError)
    async def api_validation_errors(request: Request, exc: RequestValidationError) -> Response:
        # The JSON API answers every refusal in its documented shape, even one FastAPI makes itself
        # (e.g. a path id that is not a number): {"errors": {field: zh-TW message}}.
        if request.url.path.startswith("/api/"):
            fields = {str(error["loc"][-1]): "格式不正確" for error in exc.errors() if error.get("loc")}
            return JSONResponse({"errors": fields or {"request": "請求格式不正確"}}, status_code=422)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def api_http_errors(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown API routes and wrong methods answer like every other API refusal: {"error": zh-TW}.
        if request.url.path.startswith("/api/"):
            message = HTTP_MESSAGES.get(exc.status_code, "請求無法處理")
            return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)
        return await http_exception_handler(request, exc)

    return app


HTTP_MESSAGES = {404: "找不到此 API", 405: "此 API 不接受這個 HTTP 方法"}
