"""`badreputation`: the receiving side refuses mail from the sending IP or domain for its reputation.

There is no status code of its own (servers use x.7.1 or 4.7.0); only the words tell it.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="badreputation",
    phrases=(
        "temporarily deferred due to unexpected volume or user complaints",
        "has been temporarily rate limited due to ip reputation",
        "ip/domain reputation problems",
        "likely unsolicited mail",
        "poor reputation",
        "low reputation",
        "sender reputation",
        "bad reputation",
        "https://support.google.com/mail/?p=unsolicitedipaddresses",
    ),
)
