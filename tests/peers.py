"""Real peers the tests run (Dovecot, Postfix, chromium): present, or skipped — but never skipped in CI,
where .ci/run installs them and a missing one must fail the run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest


def require_program(path: str, package: str) -> None:
    if Path(path).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: CI must run these tests (apt-get install {package})")
    pytest.skip(f"{path} is not installed (apt-get install {package})")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (a server started next may still lose it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def greets(port: int, greeting: bytes) -> bool:
    """True when a server on ``port`` answers a new connection with ``greeting`` (e.g. b"220 ")."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(greeting)
    except OSError:
        return False
