"""`notcompliantrfc`: the message does not follow RFC 5322 (duplicate or malformed headers)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="notcompliantrfc",
    documented=(
        (
            "missing a valid address in from: header",
            "Gmail SMTP errors, 550 5.7.1 ('Messages missing a valid address in From: header ...')",
        ),
        ("this message is not rfc 5322 compliant", "Gmail SMTP error reference 550 5.7.1"),
        ("multiple addresses in from: header are not accepted", "Gmail SMTP error reference 550 5.7.1"),
    ),
    phrases=(
        "multiple addresses in from:",
        "https://support.google.com/mail/?p=rfcmessagenoncompliant",
        "duplicate header",
        "not rfc 5322 compliant",
        "rfcmessagenoncompliant",
        "message is not rfc",
        "header is not rfc",
    ),
)
