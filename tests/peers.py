"""Real peers the tests run (Dovecot, Postfix, chromium, SMTP sinks, worker processes): present, or
skipped — but never skipped in CI, where .ci/run installs them and a missing one must fail the run —
and the one way the tests wait for them."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def require_program(path: str, package: str) -> None:
    if Path(path).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: CI must run these tests (apt-get install {package})")
    pytest.skip(f"{path} is not installed (apt-get install {package})")


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on right now (a server started next may still lose it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def greets(port: int, greeting: bytes) -> bool:
    """True when a server on ``port`` answers a new connection with ``greeting`` (e.g. b"220 ")."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(greeting)
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.1,
               check: Callable[[], None] | None = None, context: Callable[[], str] | None = None) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` s (a bound, not a speed
    claim). ``check`` runs each round and may fail early (a peer died); ``context`` adds to the failure
    what helps explain it (a peer's log)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {what}{extra}")
        time.sleep(every)
