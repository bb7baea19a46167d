"""/api/docs renders in a real browser with no network beyond this server and under the pages' CSP
(script-src 'self'): Swagger UI's files come from the fastapi-offline package (issue 15 item 12)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from browser.conftest import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_the_api_docs_render_from_this_server_alone(live_site: LiveSite, page: Any) -> None:
    console: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    answer = page.goto(f"{live_site.url}/api/docs")
    assert answer is not None and answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("mailflow")
    expect(page.locator(".opblock-summary-path", has_text="/api/applications").first).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/api/session").first.click()  # it works, not only shows
    expect(page.locator(".opblock.is-open")).to_have_count(1)
    assert hosts == {urlsplit(live_site.url).netloc}, hosts
    assert [m for m in console if "Content Security Policy" in m or "Refused" in m] == []


def test_the_docs_assets_and_the_description_are_served(live_site: LiveSite, page: Any) -> None:
    for path, kind in (("/api/docs/assets/swagger-ui-bundle.js", "javascript"),
                       ("/api/docs/assets/swagger-ui.css", "text/css"), ("/static/api-docs.js", "javascript"),
                       ("/api/openapi.json", "application/json")):
        answer = page.request.get(f"{live_site.url}{path}")
        assert answer.status == 200 and kind in answer.headers["content-type"], path
    assert page.request.get(f"{live_site.url}/api/docs/assets/missing.js").status == 404
