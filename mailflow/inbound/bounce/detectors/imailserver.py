"""Ipswitch/Progress IMail Server notices (X-Mailer: <SMTP32 ...>, "Undeliverable Mail").

Each failed address is on a "<cause>: addr" line (or "undeliverable to addr"); the
remote reply, when there is one, follows "Body of message generated response:".
The cause phrase or that reply names the reason.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, command_in, make_hit

NAME = "imailserver"
FAMILIES: tuple[str, ...] = ("lhost-imailserver",)
_LINE = lazy(
    r"^\s*(?:(\S[^:\n]{7,}):\s+|(undeliverable)\s+to\s+)<?([^\s<>:]+@[^\s<>]+?)>?\s*$",
    re.M | re.I,
)
_CAUSES = (
    ("unknown host", "hostunknown"),
    ("unknown user", "userunknown"),
    ("invalid final delivery userid", "userunknown"),
    ("user mailbox exceeds allowed size", "mailboxfull"),
    ("virus detected", "virusdetected"),
    ("blacklisted url in message", "spamdetected"),
    ("delivery failed ", "expired"),
)


def detect(ctx: Context) -> list[Hit] | None:
    mailer = ctx.header("X-Mailer").lstrip().upper().startswith("<SMTP32 V")
    if not mailer and not ctx.subject.startswith("Undeliverable Mail "):
        return None
    notice = between(ctx.notice, ("",), ("original message follows.",))
    response = between(notice, ("body of message generated response:",), ())
    response = " ".join(response.split())
    hits = []
    for m in _LINE.finditer(notice[:10000]):
        hit = make_hit(m.group(3), f"{response} {m.group(0).strip()}".strip())
        low = hit.diagnostic.lower()
        hit.reason = next((r for phrase, r in _CAUSES if phrase in low), "")
        hit.command = command_in(hit.diagnostic)
        hits.append(hit)
    return hits or None
