"""GET /metrics: who may scrape, and the Prometheus text of mailflow.ops.metrics (computed from the database
at scrape time, so every worker reports the same truth and nothing is lost on restart)."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from mailflow.ops.metrics import exposition

router = APIRouter()


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(request: Request) -> Response | None:
    """Who may scrape (issue 13 finding 13: /metrics was open to anyone): with security.metrics_token
    set, whoever sends it as a bearer token; without one, in relay mode only this host's own clients
    (a Prometheus beside it), in capture mode anyone."""
    settings = request.app.state.ctx.settings
    token = settings.security.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return PlainTextResponse("# a bearer token is required (security.metrics_token)\n", status_code=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if settings.smtp.mode == "relay" and not _loopback(request):
        return PlainTextResponse("# only for this host's own clients; set security.metrics_token to scrape "
                                 "from elsewhere\n", status_code=403)
    return None


@router.get("/metrics")
def metrics(request: Request) -> Response:
    refused = refusal(request)
    if refused is not None:
        return refused
    try:
        body = exposition(request.app.state.ctx.db)
    except SQLAlchemyError:
        return PlainTextResponse("# database unavailable\n", status_code=503)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
