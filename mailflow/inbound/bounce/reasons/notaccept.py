"""`notaccept`: the recipient's domain accepts no mail at all (null MX, RFC 7505; RFC 3463 x.1.10 / x.3.2).

Permanent unless the status code is a temporary one.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="notaccept",
    codes=("4.3.2", "5.1.10", "5.3.2", "5.4.4", "5.7.27"),
    phrases=(
        "couldn't find a mail exchanger",
        "doesn't receive email",
        "scored as spam",
        "no mx found",
        "indicated no smtp service",
        "does not accept mail",
        "host does not accept mail",
        "mail receiving disabled",
        "name server: .: host not found",
        "no mx record found",
        "null mx",
        "smtp protocol returned a permanent error",
        "does not accept email",
        "domain does not receive mail",
        "not accepting mail",
    ),
)
