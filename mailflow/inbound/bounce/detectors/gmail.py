"""Gmail / Google Groups text notices ("Delivery to the following recipient failed permanently")."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import between, first_address_in, make_hit

NAME = "gmail"
_INTRO = re.compile(
    r"delivery to the following recipients? (failed permanently|has been delayed|failed)", re.I
)
_ADDR = re.compile(r"^\s+<?([^\s<>@]+@[^\s<>]+?)>?\s*$", re.M)


def detect(ctx: Context) -> list[Hit] | None:
    if "google" not in ctx.from_lower and "google" not in ctx.notice[:6000].lower():
        return None
    intro = _INTRO.search(ctx.notice[:6000])
    if intro is None:
        return _groups(ctx)
    action = "delayed" if "delayed" in intro.group(1) else "failed"
    region = between(
        ctx.notice[intro.end() :], ("",), ("----- original message -----", "----- message header follows")
    )
    addrs = [m.group(1) for m in _ADDR.finditer(region.split("\n\n\n")[0] if False else region)]
    tech = region.lower().find("technical details")
    diag = region[tech:] if tech >= 0 else region
    addrs = [a for a in addrs if region.find(a) < (tech if tech >= 0 else len(region))]
    return [make_hit(a, diag, action) for a in dict.fromkeys(addrs)] or None


def _groups(ctx: Context) -> list[Hit] | None:
    """Google Groups: the notice names no recipient; report the group (To of the original)."""
    if "google groups" not in ctx.notice.lower() and "groups.google" not in ctx.notice.lower():
        return None
    addr = ""
    if ctx.original is not None:
        addr = first_address_in(str(ctx.original.get("To") or ""))
    if not addr:
        after = between(ctx.notice, ("----- original message -----",), ())
        m = re.search(r"^To:\s*(.*)$", after, re.M | re.I)
        addr = first_address_in(m.group(1)) if m else ""
    if not addr:
        return None
    return [make_hit(addr, between(ctx.notice, ("",), ("----- original message -----",)), reason="rejected")]
