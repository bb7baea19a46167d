"""Google Workspace "** Message not delivered **" notices (no per-recipient DSN fields).

The recipient is in X-Failed-Recipients (else the returned message's To); the cause is a sentence plus "The
response was:" with the remote answer.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import addresses_in, between, make_hit

NAME = "googleworkspace"
FAMILIES: tuple[str, ...] = ("lhost-googleworkspace",)
_CAUSES = (
    ("'send mail as'", "rejected"),
    ("customfromdenied", "rejected"),
    ("domain name not found", "hostunknown"),
    ("dns type 'mx' lookup", "hostunknown"),
    ("address couldn't be found", "userunknown"),
    ("address not found", "userunknown"),
    ("message blocked", "blocked"),
)


def detect(ctx: Context) -> list[Hit] | None:
    if "** message not delivered **" not in ctx.head_lower[:3000] or ctx.dsn_blocks:
        return None
    text = between(ctx.notice, ("** message not delivered **",), ("<html", "----- original message"))
    addrs = addresses_in(" ".join(ctx.header_all("X-Failed-Recipients")))
    if not addrs and ctx.original is not None:
        addrs = addresses_in(str(ctx.original.get("To") or "") + " " + str(ctx.original.get("Cc") or ""))
    if not addrs:
        return None
    low = text.lower()
    cause = next((r for phrase, r in _CAUSES if phrase in low), "")
    hits = []
    for addr in addrs:
        hit = make_hit(addr, text)
        hit.reason = cause
        hits.append(hit)
    return hits
