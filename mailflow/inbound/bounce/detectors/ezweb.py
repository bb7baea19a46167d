"""au by KDDI's EZweb mail (ezweb.ne.jp): a one-line cause, then "<address>" lines.

The cause line names the reason ("The user(s) account is disabled."); it applies to
every address listed under it.  A delivery-status part, when present, still gives
the recipients and codes.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.dsn import hits_from_blocks
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import make_hit

NAME = "ezweb"
_SENDER = re.compile(r"@ezweb\.ne\.jp\b", re.I)
_ADDR_LINE = re.compile(r"^\s*<([^\s<>]+@[^\s<>]+)>:?\s*(.*)$", re.M)
_CAUSES = (
    ("account is disabled", "suspend"),
    ("account is temporarily limited", "suspend"),
    ("suspended", "suspend"),
    ("exceeded the local limit", "mailboxfull"),
    ("mailbox is full", "mailboxfull"),
    ("over quota", "mailboxfull"),
    ("was rejected by a remote mail server", "filtered"),
    ("the following recipients did not receive this message", "filtered"),
    ("has been filtered", "filtered"),
    ("no such user", "userunknown"),
)


def detect(ctx: Context) -> list[Hit] | None:
    if not _SENDER.search(ctx.from_) and "ezweb mail" not in ctx.header("Received").lower():
        return None
    head = ctx.notice[:4000]
    first = _ADDR_LINE.search(head)
    intro = head[: first.start()] if first else head
    cause = next((r for phrase, r in _CAUSES if phrase in intro.lower()), "")
    hits = hits_from_blocks(ctx.dsn_blocks) if ctx.dsn_blocks else []
    lines = {m.group(1).lower(): m.group(2) for m in _ADDR_LINE.finditer(head)}
    if not hits:
        hits = [make_hit(addr, text) for addr, text in lines.items()]
    intro_text = " ".join(intro.split())
    for hit in hits:
        own = lines.get(hit.address, "")
        hit.diagnostic = " ".join(p for p in (intro_text, own or hit.diagnostic) if p)
        if cause:
            hit.reason = cause
    return hits or None
