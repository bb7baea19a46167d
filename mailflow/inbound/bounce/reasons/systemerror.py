"""`systemerror`: the receiving system failed or is misconfigured (RFC 3463 x.3: mail system status)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="systemerror",
    codes=(
        "4.1.9",
        "4.3.3",
        "4.3.5",
        "4.4.3",
        "4.5.3",
        "4.5.5",
        "5.1.9",
        "5.3.0",
        "5.3.3",
        "5.3.5",
        "5.4.3",
        "5.5.4",
        "5.5.5",
    ),
    documented=(
        ("queue file write error", "Postfix cleanup(8)/qmqpd(8): 'queue file write error'"),
        ("loops back to myself", "Postfix smtp(8): 'mail for ... loops back to myself'"),
        ("local configuration error", "sendmail: '554 5.3.5 Local configuration error'"),
        ("server configuration error", "Postfix: 'Server configuration error'"),
    ),
    phrases=(
        "aliasing/forwarding loop broken",
        "can't create user output file",
        "could not load drd for domain",
        "internal error reading data",
        "internal server error: operation now in progress",
        "interrupted system call",
        "it encountered an error while being processed",
        "it would create a mail loop",
        "local error in processing",
        "loop was found in the mail exchanger",
        "mail system configuration error",
        "recipient deferred because there is no mdb",
        "remote server is misconfigured",
        "service currently unavailable",
        "system config error",
        "timeout waiting for input",
        "transaction failed ",
        "mail for ",
        "internal error",
        "system error",
        "configuration error",
        "unable to deliver the message",
        "server error",
    ),
)
