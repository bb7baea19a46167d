"""`contenterror`: the message's format or media is refused (RFC 3463 class x.6: media).

x.6.x codes; words about broken MIME or headers.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import Facts


def rule(f: Facts) -> bool | None:
    if f.by_status == "contenterror" and f.says("spamdetected"):
        return False  # an x.6 code on a spam verdict: the verdict is the reason
    return None


REASON = Reason(
    name="contenterror",
    codes=(
        "4.6.0",
        "4.6.2",
        "4.6.5",
        "5.6.0",
        "5.6.1",
        "5.6.2",
        "5.6.3",
        "5.6.5",
        "5.6.6",
        "5.6.7",
        "5.6.8",
        "5.6.9",
    ),
    phrases=(
        "improper use of 8-bit data in message header",
        "message header size, or recipient list, exceeds policy limit",
        "message mime complexity exceeds the policy maximum",
        "routing loop detected -- too many received: headers",
        "this message contain invalid mime headers",
        "this message contain improperly-formatted binary content",
        "this message contain text that uses unnecessary base64 encoding",
        "invalid mime",
        "mime header",
    ),
    rule=rule,
)
