"""Smail-style notices (also old Exim 3): "Failed addresses follow:" then "addr ... reason" lines.

|------------------------- Failed addresses follow: ---------------------|
 user@example.com ... unknown host
|------------------------- Message text follows: ------------------------|
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, make_hit, smtp_command

NAME = "smail"
FAMILIES: tuple[str, ...] = ("rfc3464",)
_LINE = lazy(r"^\s*<?([^\s<>]+@[^\s<>]+?)>?\s+\.\.\.\s*(.*)$", re.M)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:6000]
    if "failed addresses follow:" not in low:
        return None
    log = between(ctx.notice, ("message log follows:",), ("failed addresses follow:",))
    log = " ".join(line.strip(" |-") for line in log.split("\n") if line.strip(" |-"))
    failed = between(ctx.notice, ("failed addresses follow:",), ("message text follows:",))
    hits = []
    for m in _LINE.finditer(failed):
        diag = m.group(2).strip(" |-")
        hits.append(make_hit(m.group(1), diag or log, command=smtp_command(diag)))
    return hits or None
