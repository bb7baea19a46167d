"""The lab's DNS: a UDP server on a random loopback address, port 53, that answers every question with
NXDOMAIN ("no such name"). Every MTA in the lab resolves through it (namespace.py binds a resolv.conf
naming it), so a lookup never leaves the machine and a domain the lab does not route by hand is, for
the MTA, a domain that does not exist: the unknown-host bounce, every time, in milliseconds.
"""

from __future__ import annotations

import random
import socket
import struct
import threading

NXDOMAIN = 3


class NxDomainServer:
    def __init__(self) -> None:
        self.sock = _bind_loopback_53()
        self.address = str(self.sock.getsockname()[0])
        self.questions: list[str] = []
        self._stop = threading.Event()
        self.sock.settimeout(0.1)  # a blocked recvfrom does not notice close(): look at _stop often
        self._thread = threading.Thread(target=self._serve, name="lab-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = nxdomain_answer(query)
            if answer:
                self.questions.append(question_name(query))
                self.sock.sendto(answer, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _bind_loopback_53() -> socket.socket:
    """Port 53 on some 127.a.b.c nobody else uses (all of 127/8 is loopback on Linux): concurrent labs
    and a resolver on 127.0.0.1/127.0.0.53 never collide."""
    last: OSError | None = None
    for _attempt in range(20):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((address, 53))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise RuntimeError(f"no loopback address with a free port 53: {last}")


def nxdomain_answer(query: bytes) -> bytes:
    """The reply to ``query``: same id and question, QR set, recursion available, rcode NXDOMAIN."""
    if len(query) < 12:
        return b""
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return b""
    end = _question_end(query)
    if end is None:
        return b""
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | NXDOMAIN  # QR, opcode+RD kept, RA, rcode
    return struct.pack("!HHHHHH", ident, reply_flags, 1, 0, 0, 0) + query[12:end]


def _question_end(query: bytes) -> int | None:
    at = 12
    while at < len(query):
        length = query[at]
        if length == 0:
            return at + 5 if at + 5 <= len(query) else None  # root label, QTYPE, QCLASS
        if length & 0xC0:
            return None
        at += 1 + length
    return None


def question_name(query: bytes) -> str:
    labels, at = [], 12
    while at < len(query) and query[at]:
        labels.append(query[at + 1:at + 1 + query[at]].decode(errors="replace"))
        at += 1 + query[at]
    return ".".join(labels)
