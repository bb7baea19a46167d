"""DragonFly Mail Agent (dma) bounces: "There was an error delivering your mail to <addr>."."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, make_hit, smtp_command

NAME = "dragonfly"
FAMILIES: tuple[str, ...] = ("lhost-dragonfly",)
_RCPT = lazy(r"error delivering your mail to <?([^\s<>]+@[^\s<>]+?)>?\.?\s*$", re.M | re.I)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:4000]
    if "dragonfly mail agent" not in low and "there was an error delivering your mail to" not in low:
        return None
    region = between(ctx.notice, ("",), ("message headers follow", "original message follows"))
    hits = []
    for m in _RCPT.finditer(region):
        diag = region[m.end() :]
        hits.append(make_hit(m.group(1), diag, command=smtp_command(diag)))
    return hits or None
