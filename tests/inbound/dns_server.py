"""A small authoritative DNS server for tests: answers TXT questions for the names it was given (DKIM
keys) over UDP on 127.0.0.1, NXDOMAIN for everything else. mailflow asks it through its own resolver
code (inbound.dns_resolver = "127.0.0.1:PORT"), the same path a production lookup takes."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class DnsServer:
    records: dict[str, bytes] = field(default_factory=dict)  # "sel._domainkey.example.com." -> TXT
    asked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, txt: bytes) -> None:
        self.records[name.lower().rstrip(".") + "."] = txt

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:
                continue  # a question we cannot read gets no answer, like a real server's drop

    def _answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.asked.append(name)
        txt = self.records.get(name)
        if txt is None or question.rdtype != dns.rdatatype.TXT:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        # One TXT record of <=255-byte strings, as a zone file would hold a 2048-bit key.
        chunks = " ".join('"' + txt[i:i + 255].decode() + '"' for i in range(0, len(txt), 255))
        response.answer.append(dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, dns.rdatatype.TXT,
                                                   chunks))
        return response.to_wire()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    record: bytes  # the TXT record publishing the public half


def make_dkim_key() -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))
