"""A webhook receiver for the tests: a real HTTP server on a free port of 127.0.0.1 that records every
request and answers 500 while ``failing`` is set (or to the bodies ``refuse`` picks)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    url: str = ""
    failing: bool = False
    refuse: Callable[[bytes], bool] | None = None  # answer 500 to the bodies it picks
    attempts: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.attempts if d.answered == 200]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            picked = receiver.refuse is not None and receiver.refuse(body)
            code = 500 if receiver.failing or picked else 200
            with receiver.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.attempts.append(Delivery(headers, body, code))
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/mailflow"
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return receiver, server
