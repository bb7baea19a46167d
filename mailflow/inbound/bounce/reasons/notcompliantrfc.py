"""`notcompliantrfc`: the message does not follow RFC 5322 (duplicate or malformed headers)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="notcompliantrfc",
    phrases=(
        "multiple addresses in from:",
        "this message is not rfc 5322 compliant",
        "https://support.google.com/mail/?p=rfcmessagenoncompliant",
        "duplicate header",
        "multiple addresses in from: header are not accepted",
        "not rfc 5322 compliant",
        "rfcmessagenoncompliant",
        "message is not rfc",
        "header is not rfc",
    ),
)
