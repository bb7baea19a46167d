"""Fixtures for the outbound-mail tests: a scripted SMTP sink on 127.0.0.1 (a free port) and a context
that relays to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailflow.context import AppContext
from tests.mail.helpers import ScriptedSink, serve


@pytest.fixture
def sink() -> Iterator[ScriptedSink]:
    yield from serve(ScriptedSink())


@pytest.fixture
def relay_ctx(ctx: AppContext, sink: ScriptedSink) -> AppContext:
    """The test context sending to the sink as a relay (what production does to its MTA)."""
    ctx.settings = ctx.settings.updated(smtp={
        "mode": "relay", "host": "127.0.0.1", "port": sink.port, "timeout_seconds": 10})
    return ctx
