"""`syntaxerror`: the SMTP conversation went wrong: a command not understood (RFC 5321 500-504)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="syntaxerror",
    codes=("5.5.2", "5.5.6"),
    phrases=(
        "malformed address",
        "syntax error",
        "command unrecognized",
        "unrecognized command",
        "bad syntax",
    ),
)
