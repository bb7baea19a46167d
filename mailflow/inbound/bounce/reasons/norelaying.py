"""`norelaying`: the receiving server does not relay for that recipient (RFC 5321 550 'relay denied')."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="norelaying",
    documented=(
        ("relay access denied", "Postfix smtpd: '554 5.7.1 Relay access denied'"),
        ("relaying denied", "sendmail: '550 5.7.1 Relaying denied'"),
        ("unable to relay", "Exchange NDR '5.7.54 SMTP; Unable to relay recipient in non-accepted domain'"),
        ("relay not permitted", "Exim default configuration ACL: 'relay not permitted'"),
    ),
    phrases=(
        "as a relay",
        "domain isn't in my list of allowed rcpthost",
        "insecure mail relay",
        "not allowed to relay through this machine",
        "not an open relay",
        "not local host",
        "relay denied",
        "relaying mail to ",
        "specified domain is not allowed",
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
