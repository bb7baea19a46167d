"""Apache James notices: "Error message below:" then "Message details:" with "RCPT TO:" lines."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, first_address_in, make_hit

NAME = "apachejames"
FAMILIES: tuple[str, ...] = ("lhost-apachejames",)
_RCPT = lazy(r"^\s*RCPT TO:\s*(.+)$", re.M | re.I)


def recognises(ctx: Context) -> bool:
    low = ctx.head_lower[:4000]
    return "error message below:" in low and "message details:" in low


def detect(ctx: Context) -> list[Hit] | None:
    if not recognises(ctx):
        return None
    return hits(ctx)


def hits(ctx: Context) -> list[Hit] | None:
    diag = between(ctx.notice, ("error message below:",), ("message details:",)).strip()
    details = between(ctx.notice, ("message details:",), ())
    addrs = [first_address_in(m.group(1)) for m in _RCPT.finditer(details)]
    found = [make_hit(a, diag) for a in dict.fromkeys(a for a in addrs if a)]
    return found or None
