"""Zoho Mail notices: "addr reason, ERROR_CODE :550, ERROR_CODE :5.1.1 text" lines."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import make_hit

NAME = "zoho"
FAMILIES: tuple[str, ...] = ("lhost-zoho",)
_LINE = lazy(r"^\s*<?([^\s<>@]+@[^\s<>]+?)>?\s+(.*ERROR_CODE.*|.*)$", re.M)


def detect(ctx: Context) -> list[Hit] | None:
    if "zoho" not in ctx.from_lower and "x-zohomail" not in ctx.headers:
        return None
    low = ctx.notice_lower
    start = max(low.find("this is a permanent error"), low.find("temporary error"), low.find("recipients."))
    if start < 0:
        return None
    region = ctx.notice[start:].split("\nReceived:", 1)[0]
    delayed = "temporary" in region[:200].lower()
    hits = []
    for m in _LINE.finditer(region):
        hit = make_hit(m.group(1), m.group(2), "delayed" if delayed else "failed")
        if delayed and not hit.status:
            hit.reason = "expired"
        hits.append(hit)
    return hits or None
