"""The lab around the MTAs, started once per test session: the DNS that knows no name, the next hop
and the DSN catcher, Dovecot LMTP with a full mailbox, and a port nobody listens on. ``produce`` drives
one MTA through every cell and returns the DSN each cell brought back.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.inbound.lab.cells import CELLS, Cell, message
from tests.inbound.lab.dns import NxDomainServer
from tests.inbound.lab.lmtp import LmtpServer
from tests.inbound.lab.peers import CATCHER_HOST, NEXT_HOP_HOST, Dsn, Peers
from tests.peers import free_port

# Every route has a loopback address of its own (peers.py has the next hop's and the catcher's): MTAs
# remember a host that refused a connection by its address, not its port (OpenSMTPD held back every
# route to 127.0.0.1 for 15 s after the closed port refused), and pace new connections per address.
CLOSED_HOST = "127.0.0.2"
DENY_HOST = "127.0.0.5"  # where each MTA's own relay-refusing listener listens
# Bounds, not speed claims: a cell whose DSN has not come back by then fails with the MTA's log.
PRODUCE_SECONDS = 40


@dataclass
class Lab:
    dns: NxDomainServer
    peers: Peers
    lmtp: LmtpServer
    closed_port: int = field(default_factory=lambda: free_port(CLOSED_HOST))

    def routes(self, deny_port: int) -> dict[str, tuple[str, int]]:
        """Domain -> (address, port), the static routes every MTA is configured with (LMTP apart)."""
        return {
            "catcher.lab.test": (CATCHER_HOST, self.peers.catcher_port),
            "peer.lab.test": (NEXT_HOP_HOST, self.peers.next_hop_port),
            "closed.lab.test": (CLOSED_HOST, self.closed_port),
            "deny.lab.test": (DENY_HOST, deny_port),
        }

    def stop(self) -> None:
        self.peers.stop()
        self.lmtp.stop()
        self.dns.close()


class Mta:
    """One running MTA: how to hand it a mail, make it retry now, show its log, and stop it."""

    name = ""
    hostname = ""
    host = "127.0.0.1"  # where its SMTP listener is
    port = 0
    not_produced: frozenset[str] = frozenset()  # cells this MTA cannot produce (its module says why)

    def submit(self, sender: str, recipient: str, raw: bytes) -> None:
        with smtplib.SMTP(self.host, self.port, local_hostname="client.lab.test", timeout=30) as smtp:
            smtp.sendmail(sender, [recipient], raw)

    def flush(self) -> None:
        raise NotImplementedError

    def log(self) -> str:
        return ""

    def stop(self) -> None:
        raise NotImplementedError


@dataclass
class Produced:
    """What one MTA did with every cell: the DSN (None when none came back), how many came back (one is
    right: no delay warning, no second notice), and its log."""

    dsns: dict[str, Dsn | None]
    counts: dict[str, int]
    recipients: dict[str, str]
    log: str
    seconds: float


def produce(mta: Mta, lab: Lab, cells: Iterable[Cell] | None = None) -> Produced:
    """Hand ``mta`` one mail per cell, then make it retry every half second until every DSN is back
    (or PRODUCE_SECONDS have passed)."""
    if cells is None:
        cells = [cell for cell in CELLS.values() if cell.name not in mta.not_produced]
    started = time.monotonic()
    senders = {}
    recipients = {}
    for cell in cells:
        sender, recipient = cell.sender(mta.name), cell.recipient(mta.name, mta.hostname)
        mta.submit(sender, recipient, message(sender, recipient, cell))
        senders[cell.name], recipients[cell.name] = sender, recipient
    deadline = time.monotonic() + PRODUCE_SECONDS
    while time.monotonic() < deadline:
        if all(lab.peers.catcher.for_sender(sender) for sender in senders.values()):
            break
        mta.flush()
        time.sleep(0.5)
    caught = {name: lab.peers.catcher.for_sender(sender) for name, sender in senders.items()}
    return Produced({name: next(iter(dsns), None) for name, dsns in caught.items()},
                    {name: len(dsns) for name, dsns in caught.items()}, recipients, mta.log(),
                    time.monotonic() - started)
