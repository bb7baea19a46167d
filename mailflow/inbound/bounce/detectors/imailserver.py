"""Ipswitch IMail Server (X-Mailer: <SMTP32 ...>) notices: "<cause>: addr" lines.

The cause phrase before the address names the reason; the remote reply, when
there is one, follows "Body of message generated response:".
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import between, make_hit

NAME = "imailserver"
_LINE = re.compile(
    r"^\s*(unknown user|invalid final delivery userid|user mailbox exceeds allowed size|"
    r"delivery failed \d+ attempts|undeliverable to|request failed|host unknown|mail server not found)"
    r":?\s*<?([^\s<>]+@[^\s<>]+?)>?\s*$",
    re.M | re.I,
)
_CAUSES = (
    ("unknown user", "userunknown"),
    ("invalid final delivery userid", "userunknown"),
    ("exceeds allowed size", "mailboxfull"),
    ("delivery failed", "expired"),
    ("host unknown", "hostunknown"),
    ("mail server not found", "hostunknown"),
)
_RESPONSE_CAUSES = (
    ("blacklisted url", "spamdetected"),
    ("uribl", "spamdetected"),
    ("spam", "spamdetected"),
)


def detect(ctx: Context) -> list[Hit] | None:
    if not ctx.header("X-Mailer").lstrip().upper().startswith("<SMTP32"):
        return None
    response = between(ctx.notice, ("body of message generated response:",), ("original message follows",))
    hits = []
    for m in _LINE.finditer(ctx.notice[:10000]):
        cause_text = m.group(1).lower()
        hit = make_hit(m.group(2), f"{m.group(0).strip()} {response.strip()}")
        rlow = response.lower()
        hit.reason = next((r for phrase, r in _CAUSES if phrase in cause_text), "") or next(
            (r for phrase, r in _RESPONSE_CAUSES if phrase in rlow), ""
        )
        hits.append(hit)
    return hits or None
