"""A counting SMTP sink (aiosmtpd, in-process, 127.0.0.1) that can misbehave on request: answer 421 or
451, drop the connection after DATA without answering, or be down altogether. It counts accepted mails by
Message-ID, so a test can say "every mail arrived, none twice". bench/scale.py uses it too."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.mail.capture import LocalController, start_controller

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class Fault:
    NONE = ""
    TEMPFAIL_421 = "421"  # "service not available, closing channel" at MAIL FROM
    TEMPFAIL_451 = "451"  # "local error in processing" after DATA
    DROP_IN_DATA = "drop"  # read the whole mail, then hang up without a reply


class CountingHandler:
    def __init__(self) -> None:
        self.fault = Fault.NONE
        self.received: Counter[str] = Counter()
        self.refused = 0
        self.refused_by: Counter[str] = Counter()  # per fault, so a phase of a test can wait for its own
        self.lock = threading.Lock()

    def count_refusal(self, fault: str) -> None:
        self.refused += 1
        self.refused_by[fault] += 1

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self.fault == Fault.TEMPFAIL_421:
            self.count_refusal(Fault.TEMPFAIL_421)
            return "421 4.3.2 sink: service not available, closing channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if self.fault == Fault.TEMPFAIL_451:
            self.count_refusal(Fault.TEMPFAIL_451)
            return "451 4.3.0 sink: try again later"
        if self.fault == Fault.DROP_IN_DATA:
            self.count_refusal(Fault.DROP_IN_DATA)
            transport: Any = getattr(server, "transport", None)
            if transport is not None:
                transport.abort()
            return "421 4.4.2 sink: connection dropped"  # never reaches the client: the socket is closed
        found = MESSAGE_ID.search(raw)
        with self.lock:
            self.received[found.group(1).decode() if found else "<none>"] += 1
        return "250 2.0.0 OK: queued"


class CountingSink:
    """The sink and its server; ``stop`` then ``start`` brings it back on the same port (an outage)."""

    def __init__(self) -> None:
        self.handler = CountingHandler()
        self.port = 0
        self.controller: LocalController | None = None

    def start(self) -> CountingSink:
        self.controller = start_controller(self.handler, port=self.port, decode_data=False,
                                           data_size_limit=None)
        self.port = int(self.controller.port)
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> Counter[str]:
        return self.handler.received

    def total(self) -> int:
        return sum(self.handler.received.values())

    def duplicates(self) -> dict[str, int]:
        return {mid: n for mid, n in self.handler.received.items() if n > 1}

    def __enter__(self) -> CountingSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
