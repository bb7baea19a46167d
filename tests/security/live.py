"""A live mailflow for the security tests: the real app under uvicorn on a free port of 127.0.0.1 (in this
process, so a test can look into the database and change module limits), plus raw-socket and threaded
helpers for what a test client cannot do: send headers without the body, dribble a body, or fire 20+
requests at the same moment."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from mailflow.context import AppContext

T = TypeVar("T")


@dataclass
class Live:
    url: str
    host: str
    port: int
    ctx: AppContext

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@contextmanager
def live_app(ctx: AppContext, **options: Any) -> Iterator[Live]:
    """``options``: more uvicorn.Config options, e.g. mailflow.web.app.server_options(settings), the
    daemon's proxy-header policy."""
    import uvicorn

    from mailflow.web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False, **options))
    thread = threading.Thread(target=server.run, name="security-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield Live(url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port, ctx=ctx)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def read_answer(sock: socket.socket) -> RawAnswer:
    """One HTTP/1.1 response from ``sock`` (Content-Length framed or ended by close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if status in (204, 304) else int(headers.get("content-length", "-1"))  # no body: RFC 9110
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawAnswer(status, headers, body)


def raw_request(live: Live, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                timeout: float = 10) -> RawAnswer:
    """Send the head (and ``body``, possibly much shorter than the Content-Length it declares), then read
    the answer — the server must answer without waiting for the rest."""
    with socket.create_connection((live.host, live.port), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {live.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode("latin-1") + body)
        return read_answer(sock)


def operations(app: Any) -> list[tuple[str, str]]:
    """Every (METHOD, path template) the app serves, as its OpenAPI description lists them."""
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops]


def every_route(app: Any) -> list[tuple[str, str]]:
    """Every (METHOD, path template) the app answers, walked from its router: the routes of its OpenAPI
    description and those left out of it (the docs page, the favicon, the schema itself), and a file
    under each mount (the static files). HEAD only where a route declares it alone."""
    from starlette.routing import Mount, Route

    found: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            if inner is not None:
                context = getattr(route, "include_context", None)
                walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif isinstance(route, Mount):
                walk(route.routes, prefix + route.path) if route.routes else found.add(
                    ("GET", f"{prefix}{route.path}/{{file}}"))
            elif isinstance(route, Route):
                methods = set(route.methods or ())
                for method in methods - {"HEAD"} or methods:
                    found.add((method, prefix + re.sub(r":\w+\}", "}", route.path)))

    walk(app.routes, "")
    found.update(operations(app))  # whatever the walk could not see (another router type)
    return sorted(found)


def at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(i)`` for i in range(count), all released at the same moment from their own threads."""
    gate = threading.Barrier(count)

    def run(i: int) -> T:
        gate.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
