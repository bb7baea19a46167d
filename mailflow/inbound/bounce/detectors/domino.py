"""IBM/Lotus Domino and Notes notices ("was not delivered to: ... because: ...")."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import addresses_in, between, make_hit

NAME = "domino"
FAMILIES: tuple[str, ...] = ("lhost-domino", "lhost-notes")
_BLOCK = lazy(r"was not delivered to:\s*(.*?)\n\s*because:\s*(.*?)(?:\n\s*\n|$)", re.I | re.S)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:6000]
    if "was not delivered to:" in low and "because:" in low:
        hits = []
        for m in _BLOCK.finditer(ctx.notice[:20000]):
            for addr in addresses_in(m.group(1)):
                hits.append(make_hit(addr, m.group(2)))
        return hits or None
    if "------- failure reasons" in low:
        return _notes(ctx)
    return None


def _notes(ctx: Context) -> list[Hit] | None:
    """Old Lotus Notes: reasons, then the address, before '------- Returned Message'."""
    region = between(ctx.notice, ("------- failure reasons",), ("------- returned message",))
    addrs = addresses_in(region)
    diag = region
    for addr in addrs:
        diag = diag.replace(addr, " ")
    return [make_hit(a, diag.strip("- \n")) for a in addrs] or None
