"""`networkerror`: a network, DNS or routing failure between the servers (RFC 3463 class x.4)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="networkerror",
    codes=("4.4.2", "4.4.4", "4.4.6", "4.4.8", "5.4.0"),
    phrases=(
        "malformed or unexpected name server reply",
        "too many hops",
        "hop count exceeded",
        "routing loop",
        "loop detected",
        "mail loop",
        "wasn't able to establish an smtp connection",
        "dns error",
        "could not connect and send the mail to",
        "dns records for the destination computer could not be found",
        "hop count exceeded - possible mail loop",
        "host is unreachable",
        "host name lookup failure",
        "host not found, try again",
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
