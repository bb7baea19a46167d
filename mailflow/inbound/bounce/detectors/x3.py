"""X3 (unnamed MTA): "This is an automatically generated Delivery Status Notification." notices.

Recipients are "* addr" lines under "Delivery to the following recipients failed
permanently:"; "Technical details:" holds "SMTP:RCPT host ...: 550 ..." lines.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, make_hit

NAME = "x3"
FAMILIES: tuple[str, ...] = ("lhost-x3",)
_ITEM = lazy(r"^\s*\*\s+<?([^\s<>]+@[^\s<>]+?)>?\s*$", re.M)
_TECH = lazy(r"^\s*SMTP:([A-Z]{4})\s+host\s+\S+:\s*(.*)$", re.M)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:3000]
    if "this is an automatically generated delivery status notification" not in low:
        return None
    listed = between(ctx.notice, ("following recipients failed",), ("technical details:", "====="))
    addrs = [m.group(1).lower() for m in _ITEM.finditer(listed)]
    if not addrs:
        return None
    tech = between(ctx.notice, ("technical details:",), ())
    hits = []
    for addr in dict.fromkeys(addrs):
        diag, command = "", ""
        for m in _TECH.finditer(tech):
            if addr in m.group(2).lower() or len(addrs) == 1:
                command, diag = m.group(1), m.group(2)
                break
        hits.append(make_hit(addr, diag, command=command))
    action = "delayed" if "temporar" in low else "failed"
    for hit in hits:
        hit.action = action
    return hits
