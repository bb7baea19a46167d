"""The HTTP API under schemathesis, generated from the app's own OpenAPI schema (/api/openapi.json): no
request, however odd, gets a 5xx, and every error of the JSON API comes in the documented shape —
``{"errors": {field: message}}`` or ``{"error": message}`` with zh-TW text. A bounded number of
examples per operation keeps it well under a minute."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mailflow.context import AppContext
from mailflow.web.app import create_app


@pytest.fixture
def api_schema(ctx: AppContext) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", create_app(ctx))


schema = schemathesis.pytest.from_fixture("api_schema")


def is_json_api(path: str) -> bool:
    return path.startswith("/api/")


def documented_error(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if set(body) == {"errors"}:
        errors = body["errors"]
        return isinstance(errors, dict) and bool(errors) and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    if set(body) == {"error"}:
        return isinstance(body["error"], str) and bool(body["error"])
    return False


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error_or_an_undocumented_error(case: Any) -> None:
    response = case.call()
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text[:300]}"
    # 405 for a method no route has (TRACE, PATCH...) is the framework's, outside the documented API.
    if response.status_code >= 400 and response.status_code != 405 and is_json_api(case.path):
        assert documented_error(response.json()), f"{where} -> {response.status_code}: {response.text[:300]}"
