"""`mailererror`: the local delivery program failed (Diagnostic-Code of type X-Unix, procmail, pipes)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="mailererror",
    phrases=(
        "x-unix; ",
        "command died with status",
        "command failed:",
        "command output:",
        "command time limit exceeded",
        "error in command",
        "mailer error",
        "procmail:",
        "bin/procmail",
        "program exited",
        "pipe to |",
        "permission denied",
        "unknown mailer error",
    ),
    words=("exit ",),
)
