"""`mailererror`: the local delivery program failed (Diagnostic-Code of type X-Unix, procmail, pipes)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="mailererror",
    documented=(
        ("command output:", "Postfix local(8)/pipe(8): 'Command output: ...'"),
        ("command died with status", "Postfix pipe(8)/local(8): 'Command died with status %d'"),
        ("procmail:", "procmail prefixes its error messages with 'procmail:'"),
        ("pipe to |", "Exim shows a pipe delivery's address as 'pipe to |command'"),
        ("unknown mailer error", "sendmail: 'Unknown mailer error %d'"),
    ),
    phrases=(
        "x-unix; ",
        "command failed:",
        "command time limit exceeded",
        "error in command",
        "mailer error",
        "bin/procmail",
        "program exited",
        "permission denied",
    ),
    words=("exit ",),
)
