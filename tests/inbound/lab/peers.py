"""The lab's SMTP peers, aiosmtpd on 127.0.0.1: the next hop the MTAs relay to, which fails some
recipients the way real receivers do, and the catcher, which receives the DSNs the MTAs write.

Next-hop behaviour by the recipient's local part (each test uses its own address, so state never mixes):
- ``later-*``: 450 (greylisted) the first time, 550 user unknown from the second attempt on — the MTA
  must retry, then bounce with the permanent answer;
- ``blocked-*``: 554 5.7.1, the client is on a blocklist;
- anything else is accepted. The next hop advertises SIZE: a bigger mail is refused (mesgtoobig).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.mail.capture import LocalController

NEXT_HOP_SIZE_LIMIT = 40_000
# Addresses of their own (all of 127/8 is loopback): OpenSMTPD waits 5 s between two connections to one
# address, whatever the port, and mails to the next hop and DSNs to the catcher would queue up behind
# each other on 127.0.0.1.
NEXT_HOP_HOST = "127.0.0.3"
CATCHER_HOST = "127.0.0.4"

GREYLISTED = "450 4.2.0 <{0}>: Recipient address rejected: Greylisted, please try again later"
UNKNOWN = "550 5.1.1 <{0}>: Recipient address rejected: User unknown in virtual mailbox table"
BLOCKED = ("554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org; "
           "https://www.spamhaus.org/query/ip/127.0.0.1")


class NextHop:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rcpt_attempts: Counter[str] = Counter()
        self.accepted: list[str] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        local = address.split("@", 1)[0].lower()
        with self.lock:
            self.rcpt_attempts[address.lower()] += 1
            attempt = self.rcpt_attempts[address.lower()]
        if local.startswith("later-"):
            return (GREYLISTED if attempt == 1 else UNKNOWN).format(address)
        if local.startswith("blocked-"):
            return BLOCKED
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.accepted.extend(envelope.rcpt_tos)
        return "250 2.0.0 OK: queued"


@dataclass
class Dsn:
    mail_from: str
    rcpt_to: str
    raw: bytes


class Catcher:
    """Keeps every mail by envelope recipient: a lab sender address receives its DSN here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails: list[Dsn] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.mails.append(Dsn(envelope.mail_from or "", rcpt.lower(), raw))
        return "250 2.0.0 OK: caught"

    def for_sender(self, sender: str) -> list[Dsn]:
        with self.lock:
            return [mail for mail in self.mails if mail.rcpt_to == sender.lower()]


class Peers:
    """Both servers, started and stopped together, each on a loopback address of its own."""

    def __init__(self) -> None:
        self.next_hop = NextHop()
        self.catcher = Catcher()
        self._hop = _serve(self.next_hop, NEXT_HOP_HOST, "peer.lab.test", NEXT_HOP_SIZE_LIMIT)
        self._catch = _serve(self.catcher, CATCHER_HOST, "catcher.lab.test", None)
        self.next_hop_port = int(self._hop.port)
        self.catcher_port = int(self._catch.port)

    def stop(self) -> None:
        self._hop.stop()
        self._catch.stop()


def _serve(handler: object, host: str, name: str, size_limit: int | None) -> LocalController:
    controller = LocalController(handler, hostname=host, port=0, server_hostname=name,
                                 data_size_limit=size_limit)
    controller.start()
    return controller
