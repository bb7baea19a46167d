"""Microsoft Exchange 2003 and older text notices ("did not reach the following recipient(s)").

Exchange's own texts ("The recipient name is not recognized", MSEXCH:IMS codes)
are mapped to reasons here because they carry no status code.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, hits_from_blocks, split_blocks

NAME = "exchange2003"
FAMILIES: tuple[str, ...] = ("lhost-exchange2003",)
# "addr on <date>", or an X.400 O/R address whose SMTP part is the address:
# "c=US;a= ;p=ORG;o=SITE;dda:SMTP=addr; on <date>"
_LINE = lazy(r"^\s*(?:\S.*?\bSMTP[=:])?<?([^\s<>@;]+@[^\s<>;]+?)>?;?\s+on\s+\S.*$")
_CODES = (
    ("000c05a6", "userunknown"),
    ("recipient name is not recognized", "userunknown"),
    ("000c0595", "expired"),
    ("000b099c", "hostunknown"),
    ("000b09aa", "networkerror"),
    ("000c05a5", "mailboxfull"),
    ("000c0599", "filtered"),
    (
        "the message could not be delivered because the recipient's destination e-mail system is unknown",
        "hostunknown",
    ),
    ("restricted", "filtered"),
    ("access denied", "filtered"),
    ("mailbox full", "mailboxfull"),
)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower[:6000]
    if "did not reach the following recipient" not in low and "could not be reached:" not in low:
        return None
    region = between(ctx.notice, ("following recipient(s):", "could not be reached:"), ())
    hits = hits_from_blocks(split_blocks(region, _LINE))
    for hit in hits:
        dlow = hit.diagnostic.lower()
        for needle, reason in _CODES:
            if needle in dlow:
                hit.reason = reason
                break
    return hits or None
