"""GET /healthz: 200 while the database answers, 503 otherwise (load balancers and systemd watch it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    if request.app.state.ctx.db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "detail": "database does not answer"}, status_code=503)
