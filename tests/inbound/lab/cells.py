"""The failures the lab makes every MTA produce, and the routes that produce them.

A cell is one kind of failure: the recipient the test mails, the address the DSN comes back to, and what
the bounce must be read as — the failure we caused, in Sisimai's vocabulary, and whether it is
permanent for the address (hard) or not. The status code each MTA writes is pinned in its own test
module, since that is the MTA's choice, not ours.

Domains (every MTA routes them by hand to 127.0.0.1 ports; everything else goes through the lab's DNS,
which knows no name):
- ``catcher.lab.test``: the DSN catcher, where every lab sender lives;
- ``peer.lab.test``: the next hop (peers.NextHop), size limit and scripted refusals;
- ``closed.lab.test``: a port nobody listens on, so mail waits until its queue lifetime runs out;
- ``lmtp.lab.test``: Dovecot LMTP with one mailbox, full, and no other;
- ``deny.lab.test``: a listener of the MTA itself that relays for nobody;
- ``nohost.lab.invalid``: not routed, so a DNS lookup, answered NXDOMAIN;
- the MTA's own host name: local delivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from tests.inbound.lab.lmtp import QUOTA_USER
from tests.inbound.lab.peers import NEXT_HOP_SIZE_LIMIT

CATCHER = "catcher.lab.test"


@dataclass(frozen=True)
class Cell:
    name: str
    reason: str  # Sisimai's word for the failure we cause
    hard: bool
    local_part: str
    domain: str  # "" = the MTA's own host name (local delivery)
    big: bool = False

    def recipient(self, mta: str, hostname: str) -> str:
        if self.local_part == QUOTA_USER:  # the one mailbox the LMTP server has
            return f"{QUOTA_USER}@{self.domain}"
        return f"{self.local_part}-{mta}@{self.domain or hostname}"

    def sender(self, mta: str) -> str:
        return f"lab-{mta}-{self.name}@{CATCHER}"


CELLS = {
    cell.name: cell
    for cell in (
        Cell("userunknown", "userunknown", True, "nosuchuser", ""),
        Cell("hostunknown", "hostunknown", True, "someone", "nohost.lab.invalid"),
        Cell("mailboxfull", "mailboxfull", False, QUOTA_USER, "lmtp.lab.test"),
        # The LMTP server has no such mailbox: a user-unknown answer from the last hop, over LMTP.
        Cell("nomailbox", "userunknown", True, "nosuchuser", "lmtp.lab.test"),
        Cell("mesgtoobig", "mesgtoobig", False, "big", "peer.lab.test", big=True),
        Cell("norelaying", "norelaying", False, "someone", "deny.lab.test"),
        Cell("expired", "expired", False, "waiting", "closed.lab.test"),
        # 450 greylisted first, 550 user unknown on the retry: the permanent answer decides.
        Cell("later", "userunknown", True, "later", "peer.lab.test"),
        Cell("blocked", "blocked", False, "blocked", "peer.lab.test"),
    )
}


def message(sender: str, recipient: str, cell: Cell) -> bytes:
    """A plain mail: about 2 KB (more than the full mailbox's 1 KB quota), or past the next hop's
    size limit for the too-big cell."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = recipient
    mail["Subject"] = f"bounce lab: {cell.name}"
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@{CATCHER}>"
    size = NEXT_HOP_SIZE_LIMIT * 2 if cell.big else 2_000
    line = "The bounce lab sends this mail so that it fails on purpose.\n"
    mail.set_content(line * (size // len(line) + 1))
    return mail.as_bytes(policy=SMTP)  # CRLF: Sendmail refuses a bare LF
