"""`networkerror`: a network, DNS or routing failure between the servers (RFC 3463 class x.4)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="networkerror",
    codes=("4.4.2", "4.4.4", "4.4.6", "4.4.8", "5.4.0"),
    documented=(
        (
            "host not found, try again",
            "Postfix dns_lookup: 'Host not found, try again' (the resolver's TRY_AGAIN)",
        ),
        ("too many hops", "sendmail: '554 5.4.6 Too many hops %d (%d max)'"),
        ("routing loop", "RFC 3463 X.4.6 'Routing loop detected'"),
        ("mail forwarding loop", "Postfix: 'mail forwarding loop for ...'"),
        (
            "wasn't able to establish an smtp connection",
            "qmail 1.03 qmail-remote: '... establish an SMTP connection. (#4.4.1)'",
        ),
        ("hop count exceeded", "Exchange NDR 5.4.6 / 5.4.14 'Hop count exceeded - possible mail loop'"),
        ("dns query failed", "Exchange Online NDR 5.4.312 / 4.4.312 'DNS query failed'"),
    ),
    phrases=(
        "malformed or unexpected name server reply",
        "loop detected",
        "mail loop",
        "dns error",
        "could not connect and send the mail to",
        "dns records for the destination computer could not be found",
        "hop count exceeded - possible mail loop",
        "host is unreachable",
        "host name lookup failure",
        "mail forwarding loop for ",
        "malformed mail header",
        "maximum forwarding loop count exceeded",
        "message looping",
        "message probably in a routing loop",
        "name server failure",
        "network is unreachable",
        "no route to host",
        "server could not be contacted",
        "unable to resolve route ",
        "unrouteable mail domain",
        "could not be resolved",
        "name server timeout",
        "lost connection",
    ),
)
