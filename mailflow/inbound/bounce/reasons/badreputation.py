"""`badreputation`: the receiving side refuses mail from the sending IP or domain for its reputation.

There is no status code of its own (servers use x.7.1 or 4.7.0); only the words tell it.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="badreputation",
    documented=(
        ("low reputation", "Gmail SMTP errors, 550 5.7.1 ('... very low reputation of the sending IP')"),
    ),
    phrases=(
        "temporarily deferred due to unexpected volume or user complaints",
        "has been temporarily rate limited due to ip reputation",
        "ip/domain reputation problems",
        "likely unsolicited mail",
        "poor reputation",
        "sender reputation",
        "bad reputation",
        "https://support.google.com/mail/?p=unsolicitedipaddresses",
    ),
)
