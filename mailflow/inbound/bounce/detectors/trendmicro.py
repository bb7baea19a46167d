"""Trend Micro InterScan Messaging Security Suite notices ("Reason: Unable to deliver message to <addr>")."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import make_hit

NAME = "trendmicro"
_REASON = re.compile(r"^\s*Reason:\s*(.*?<([^\s<>]+@[^\s<>]+)>.*)$", re.M | re.I)
_CAUSES = (
    ("unable to deliver message to", "userunknown"),
    ("unable to connect", "networkerror"),
    ("timed out", "expired"),
)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.notice[:3000].lower()
    if "interscan messaging security suite" not in low and "interscan" not in ctx.header("X-Mailer").lower():
        return None
    hits = []
    for m in _REASON.finditer(ctx.notice[:8000]):
        hit = make_hit(m.group(2), m.group(1))
        dlow = hit.diagnostic.lower()
        hit.reason = next((r for phrase, r in _CAUSES if phrase in dlow), "")
        hits.append(hit)
    return hits or None
