"""`filtered`: the recipient's own filter refused the mail (RFC 3463 x.2.0 / x.2.4 and 'no such user' said
after DATA).

A mailbox that exists but does not take this mail: a refusal of the message, not of the address.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import BEFORE_DATA, Facts


def rule(f: Facts) -> bool:
    if f.by_status == "suspend":
        return False
    if f.by_status == "filtered":
        return f.says("userunknown") or f.says("filtered")
    if f.hit.command in BEFORE_DATA:
        return False  # refused before the content was sent: not a filter on the message
    return f.says("filtered") or f.says("userunknown")


REASON = Reason(
    name="filtered",
    codes=("4.2.4", "5.1.4", "5.2.0", "5.2.1", "5.2.4"),
    phrases=(
        "because the recipient is not accepting mail with ",
        "http://postmaster.facebook.com/",
        "permission denied. command output: ",
        "this account is protected by",
        "user not found:",
        "user reject",
        "we failed to deliver mail because the following address recipient id refuse to receive mail",
        "you have been blocked by the recipient",
        "due to sender's domain or address",
        "recipient refuses your mail",
        "the recipient has chosen not to receive",
        "bounced address",
        "has restricted sms e-mail",
        "is not accepting any mail",
        "message filtered",
        "message rejected due to user rules",
        "not found recipient account",
        "recipient id refuse to receive mail",
        "recipient is only accepting mail from specific email addresses",
        "refused due to recipient preferences",
        "user not found",
        "user refuses to receive this mail",
    ),
    rule=rule,
)
