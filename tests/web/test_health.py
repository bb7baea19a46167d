"""/healthz (503 when the database is gone) and the API's own answer for unknown routes and methods."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.web.app import create_app


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_503_when_the_database_is_gone(tmp_path: Path) -> None:
    settings = load_settings(None, {"MAILFLOW_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    ctx = AppContext.from_settings(settings)
    with TestClient(create_app(ctx)) as c:
        response = c.get("/healthz")
    assert response.status_code == 503


def test_unknown_api_routes_and_methods_answer_in_the_api_shape(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"error": "找不到此 API"}
    wrong = client.get("/api/applications")
    assert wrong.status_code == 405 and wrong.json() == {"error": "此 API 不接受這個 HTTP 方法"}
    assert "allow" in {k.lower() for k in wrong.headers}
    assert client.get("/no-such-page").status_code == 404  # pages keep FastAPI's own answer
