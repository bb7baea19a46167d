"""fml mailing-list manager notices (X-MLServer: fml): the list refused or looped a post."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import first_address_in, make_hit

NAME = "fml"
_ADDR = re.compile(r"<([^\s<>]+@[^\s<>]+)>")
_CAUSES = (
    ("duplicated message-id", "systemerror"),
    ("loop alert", "systemerror"),
    ("looped", "systemerror"),
    ("not member", "rejected"),
    ("not a member", "rejected"),
    ("you are not allowed to post", "rejected"),
    ("security alert", "securityerror"),
    ("message too big", "mesgtoobig"),
    ("message size", "mesgtoobig"),
)


def detect(ctx: Context) -> list[Hit] | None:
    server = (ctx.header("X-MLServer") + " " + ctx.header("X-ML-Server")).lower()
    if "fml" not in server:
        return None
    head = ctx.notice.split("\n\n", 1)[0][:2000]
    m = _ADDR.search(head)
    addr = m.group(1) if m else first_address_in(head)
    if not addr:
        return None
    text = (ctx.subject + " " + head).lower()
    hit = make_hit(addr, " ".join(head.split()))
    hit.reason = next((r for phrase, r in _CAUSES if phrase in text), "")
    return [hit]
