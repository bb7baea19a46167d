"""Verizon Wireless (vtext.com / vzwpix.com) notices, the Apache James layout sent by Verizon.

Verizon's gateway only writes this notice for addresses it does not know, so
"no such user" here is a missing mailbox, not a filter.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors import apachejames
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

NAME = "verizon"
FAMILIES: tuple[str, ...] = ("lhost-verizon",)
_SENDER = lazy(r"@(?:vtext\.com|vzwpix\.com|vmpix\.com)\b", re.I)
_USER = ("no such user", "invalid user address", "user unknown")


def detect(ctx: Context) -> list[Hit] | None:
    if not _SENDER.search(ctx.from_) or not apachejames.recognises(ctx):
        return None
    found = apachejames.hits(ctx)
    for hit in found or ():
        low = hit.diagnostic.lower()
        if any(p in low for p in _USER):
            hit.reason = "userunknown"
    return found
