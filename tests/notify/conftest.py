"""Fixtures of the Notifications API tests: a live mailflow (real uvicorn on a free port of 127.0.0.1),
keys issued the way `mailflow apikey add` issues them, and the mail tests'
SMTP sink (``sink``, ``relay_ctx``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailflow.context import AppContext
from mailflow.notify import apikeys
from tests.mail.conftest import relay_ctx, sink  # noqa: F401 (the SMTP sink fixtures, shared)


@dataclass
class Live:
    url: str
    ctx: AppContext

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)


@pytest.fixture
def live(ctx: AppContext) -> Iterator[Live]:
    """create_app(ctx) served by uvicorn in a thread, as `mailflow run` serves it."""
    import uvicorn

    from mailflow.web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="notify-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    yield Live(f"http://127.0.0.1:{port}", ctx)
    server.should_exit = True
    thread.join(timeout=10)


def issue_key(ctx: AppContext, name: str = "pass-system", scopes: tuple[str, ...] = ("notify",),
              rate: int | None = None) -> str:
    with ctx.db.session() as session:
        _row, key = apikeys.add_key(session, ctx.settings, name, list(scopes), rate)
    return key


PASS_ISSUED = {"name": "王小明", "company_name": "臺灣港務股份有限公司基隆分公司",
               "pass_number": "KL-1150001234", "pass_type": "臨時通行證(人員)", "holder_name": "陳大文",
               "valid_until": "116年11月30日"}


def pass_issued(**fields: Any) -> dict[str, Any]:
    """A POST /api/v1/notifications body for pass-issued (``fields`` add or replace top-level fields)."""
    return {"template": "pass-issued", "personalisation": dict(PASS_ISSUED), **fields}



@pytest.fixture
def relay(relay_ctx: AppContext) -> AppContext:  # noqa: F811 (relay_ctx is the imported fixture)
    """The test's context relaying to ``sink`` (the mail tests' relay_ctx, by a shorter name)."""
    return relay_ctx
