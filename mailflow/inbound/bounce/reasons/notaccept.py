"""`notaccept`: the recipient's domain accepts no mail at all (null MX, RFC 7505; RFC 3463 x.1.10 / x.3.2).

Permanent unless the status code is a temporary one.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="notaccept",
    codes=("4.3.2", "5.1.10", "5.3.2", "5.4.4", "5.7.27"),
    documented=(
        (
            "indicated no smtp service",
            "Exim dnslookup router: 'an MX or SRV record indicated no SMTP service' (null MX)",
        ),
        ("no mx found", "OpenSMTPD mta.c: 'No MX found for domain'"),
        (
            "does not accept mail",
            "RFC 7504: '521 Host does not accept mail', '556 Domain does not accept mail'",
        ),
        ("null mx", "RFC 7505 null MX"),
        (
            "couldn't find a mail exchanger",
            "qmail 1.03 qmail-remote: 'Sorry, I couldn't find a mail exchanger or IP address.'",
        ),
    ),
    phrases=(
        "doesn't receive email",
        "scored as spam",
        "host does not accept mail",
        "mail receiving disabled",
        "name server: .: host not found",
        "no mx record found",
        "smtp protocol returned a permanent error",
        "does not accept email",
        "domain does not receive mail",
        "not accepting mail",
    ),
)
