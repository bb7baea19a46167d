"""m-FILTER (Japanese gateway): "-------server message" / "-------SMTP command" sections."""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import addresses_in, between, make_hit

NAME = "mfilter"
FAMILIES: tuple[str, ...] = ("lhost-mfilter",)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:8000]
    if "-------server message" not in low and "m-filter" not in low:
        return None
    head = between(ctx.notice, ("",), ("-------server message", "-------original message"))
    diag = between(ctx.notice, ("-------server message",), ("-------smtp command", "-------original message"))
    command = between(ctx.notice, ("-------smtp command",), ("-------original message",)).strip().upper()
    addrs = addresses_in(head)
    return [make_hit(a, diag, command=command.split()[0] if command else "") for a in addrs] or None
