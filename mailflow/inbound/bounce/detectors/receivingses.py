"""Amazon SES *receiving* side: the bounce action of a receipt rule (X-SES-Outgoing, plain DSN).

Those replies are templates the domain owner picked in a rule, not the result of a
mailbox lookup, so "Mailbox does not exist" here is the owner's filter.  The
recipients and codes come from the ordinary delivery-status part.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors import rfc3464
from mailflow.inbound.bounce.model import Hit

NAME = "receivingses"
FAMILIES: tuple[str, ...] = ("lhost-receivingses",)
_TEMPLATES = (
    ("mailbox does not exist", "filtered"),
    ("message filtered", "filtered"),
    ("message content rejected", "contenterror"),
    ("message too large", "mesgtoobig"),
    ("mailbox full", "mailboxfull"),
    ("message length exceeds limit set by recipient", "exceedlimit"),
)


def detect(ctx: Context) -> list[Hit] | None:
    if not ctx.header("X-SES-Outgoing") or not ctx.dsn_blocks:
        return None
    if "amazonses.com" in ctx.from_lower:
        return None  # SES's own outbound bounces are ordinary DSNs
    hits = rfc3464.detect(ctx)
    for hit in hits or ():
        low = hit.diagnostic.lower()
        hit.reason = next((r for phrase, r in _TEMPLATES if phrase in low), "")
    return hits
