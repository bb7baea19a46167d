"""Last resort: flufl.bounce's many heuristics, for addresses only.

flufl.bounce knows no reasons, so the reason comes from our classifier run on
the notice paragraph that names the address.  Only used for mails that already
look like bounces (see `looks_like_bounce`), because flufl is generous.
"""

from __future__ import annotations

import re

from flufl.bounce import scan_message

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors.rfc3464 import paragraph_about
from mailflow.inbound.bounce.mailtext import clean_address
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import make_hit

NAME = "flufl"

_SENDER_RE = re.compile(r"mailer-daemon|postmaster|mail delivery|mailer daemon|post_master|mdaemon", re.I)
_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery (status|failure|notification|failed|has failed)|returned mail|"
    r"failure notice|mail delivery failed|could not be delivered|non remis|unzustellbar|nicht zustellbar|"
    r"mail system error|delivery problem|message not delivered|returning message",
    re.I,
)


def looks_like_bounce(ctx: Context) -> bool:
    return bool(_SENDER_RE.search(ctx.from_) or _SUBJECT_RE.search(ctx.subject))


def detect(ctx: Context) -> list[Hit] | None:
    if not looks_like_bounce(ctx) or "message/delivery-status" in ctx.content_types:
        # a DSN our RFC 3464 reader found nothing in is not worth flufl's guesses
        return None
    try:
        found = scan_message(ctx.msg)
    except Exception:  # flufl detectors are not hardened against every input
        return None
    hits = []
    for raw in sorted(found):
        addr = clean_address(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
        if "@" not in addr:
            continue
        hits.append(make_hit(addr, paragraph_about(ctx.notice, addr)))
    return hits or None
