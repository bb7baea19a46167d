"""/api/docs: Swagger UI over /api/openapi.json, served from this server alone.

FastAPI's default docs page loads Swagger UI from a CDN and starts it with an inline script; the pages'
CSP (script-src 'self', mailflow.web.security) blocks both, so the page stayed blank. This is FastAPI's
self-hosting recipe — the default docs off, Swagger UI's files served by us — with the files taken from
the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1) and the start-up moved into our
own /static/api-docs.js, so the page works offline and under the unchanged CSP.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mailflow.web.pages import render

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"
# swagger-ui-bundle.js and swagger-ui.css as the package ships them.
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter()


@router.get(DOCS_PATH, include_in_schema=False)
def docs_page(request: Request) -> HTMLResponse:
    return render(request, "api_docs.html", openapi_url=request.app.openapi_url, assets=ASSETS_PATH)


def install(app: FastAPI) -> None:
    """The docs page and Swagger UI's files (create FastAPI with docs_url=None)."""
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=str(SWAGGER_UI_DIR)), name="api-docs-assets")
