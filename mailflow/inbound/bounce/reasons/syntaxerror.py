"""`syntaxerror`: the SMTP conversation went wrong: a command not understood (RFC 5321 500-504)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="syntaxerror",
    codes=("5.5.2", "5.5.6"),
    documented=(
        ("bad sequence of commands", "RFC 5321 reply 503 'Bad sequence of commands'"),
        ("malformed address", "Exim: 'malformed address: ... may not follow ...'"),
        ("illegal address syntax", "Postfix smtpd: 'Illegal address syntax'"),
        (
            "syntax error",
            "RFC 5321 replies 500/501 'Syntax error, command unrecognized' / '... in parameters'",
        ),
    ),
    phrases=(
        "command unrecognized",
        "unrecognized command",
        "bad syntax",
    ),
)
