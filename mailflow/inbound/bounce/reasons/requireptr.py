"""`requireptr`: the sending IP has no (matching) reverse DNS (PTR) record (RFC 7372 x.7.25)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="requireptr",
    codes=("4.7.25", "5.7.25"),
    documented=(
        ("reverse dns validation failed", "RFC 7372 / IANA registry X.7.25 'Reverse DNS validation failed'"),
        (
            "ptr record",
            "RFC 7372 X.7.25: the client IP's PTR record (RFC 1035) the reverse DNS check reads",
        ),
        (
            "cannot find your hostname",
            "Postfix smtpd reject_unknown_client_hostname: 'cannot find your hostname'",
        ),
        (
            "the ip address sending this message does not have a ptr record setup",
            "Gmail SMTP error reference 550 5.7.25",
        ),
    ),
    phrases=(
        "mismatches client ip",
        "client host rejected: cannot find your hostname",
        "fix reverse dns for",
        "ips with missing ptr records",
        "please get a custom reverse dns name from your isp for your host",
        "reverse dns failed",
        "reverse dns required",
        "reverse dns lookup",
        "no reverse dns",
        "sender ip reverse lookup rejected",
        "the corresponding forward dns entry does not point to the sending ip",
        "this system will not accept messages from servers/devices with no reverse dns",
        "unresolvable relay host name",
        "we do not accept mail from hosts with dynamic ip or generic dns ptr-records",
        "reverse lookup failed",
        "client host rejected: unknown",
        "reverse hostname",
        "access denied. ip name lookup failed",
        "all mail servers must have a ptr record with a valid reverse dns entry",
        "bad dns ptr resource record",
        "cannot resolve your address.",
    ),
    pairs=(
        ("domain ", " mismatches client ip"),
        ("dns lookup failure: ", " try again later"),
        ("reverse dns lookup for host ", " failed permanently"),
        ("server access ", " forbidden by invalid rdns record of your mail server"),
        ("service permits ", " unverifyable sending ips"),
    ),
)
