"""`norelaying`: the receiving server does not relay for that recipient (RFC 5321 550 'relay denied')."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="norelaying",
    phrases=(
        "as a relay",
        "domain isn't in my list of allowed rcpthost",
        "insecure mail relay",
        "not allowed to relay through this machine",
        "not an open relay",
        "not local host",
        "relay access denied",
        "relay denied",
        "relaying denied",
        "relay not permitted",
        "relaying mail to ",
        "specified domain is not allowed",
        "unable to relay",
        "we don't handle mail for",
        "relay prohibited",
        "no relaying",
        "relaying not allowed",
        "relay not allowed",
        "not allowed to relay",
    ),
    pairs=(
        ("relay", " denied"),
        ("relay", " not permitted"),
    ),
)
