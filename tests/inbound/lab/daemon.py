"""Servers the lab runs as foreground child processes (Exim, Sendmail, OpenSMTPD, Dovecot LMTP): each
keeps everything in its own temporary folder, its output in ``output`` there; it is started on free
ports, tried again on others when the port was taken in between, and stopped with its folder removed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.peers import greets

GREETING_SECONDS = 15  # a bound, not a speed claim
ATTEMPTS = 5


class Daemon:
    root: Path
    process: subprocess.Popen[bytes]
    port: int

    def output(self) -> str:
        path = self.root / "output"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> str:
        return self.output()

    def stop(self) -> None:
        end(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


def spawn(argv: list[str], root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with (root / "output").open("ab") as output:
        return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env)


def end(process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


D = TypeVar("D", bound=Daemon)


def first_greeting(what: str, root: Path, launch: Callable[[], D]) -> D:
    """``launch()`` writes the configuration for free ports and starts the server; the server is returned
    once it answers 220 on 127.0.0.1:port. ``root`` is removed when no attempt gets that far."""
    detail = ""
    for _attempt in range(ATTEMPTS):
        server = launch()
        deadline = time.monotonic() + GREETING_SECONDS
        while time.monotonic() < deadline and server.process.poll() is None:
            if greets(server.port, b"220 "):
                return server
            time.sleep(0.05)
        end(server.process)
        detail = server.log()
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"{what} did not start: {detail[-3000:]}")
