"""Postfix's "errors from" notice: the SMTP server's own session transcript (In:/Out: lines).

The failing recipients are the "In: RCPT TO:<addr>" lines; the error is the last
4xx/5xx "Out:" reply, given to the command sent just before it.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.mailtext import clean_address
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import make_hit

NAME = "postfix_smtpd"
FAMILIES: tuple[str, ...] = ("lhost-postfix",)
_IN = lazy(r"^\s*In:\s+(\S+)(.*)$")
_OUT = lazy(r"^\s*Out:\s+([45]\d\d[ -].*)$")
_RCPT = lazy(r"RCPT\s+TO:\s*<([^<>\s]+@[^<>\s]+)>", re.I)


def detect(ctx: Context) -> list[Hit] | None:
    if "transcript of session follows" not in ctx.head_lower[:2000] or " In:" not in ctx.notice[:8000]:
        return None
    rcpts: list[str] = []
    command, error, error_command = "", "", ""
    for line in ctx.notice[:20000].split("\n"):
        m = _IN.match(line)
        if m:
            command = m.group(1).upper()
            r = _RCPT.search(line)
            if r:
                rcpts.append(clean_address(r.group(1)))
            continue
        o = _OUT.match(line)
        if o:
            error, error_command = o.group(1), command
    if not rcpts or not error:
        return None
    return [make_hit(a, error, command=error_command) for a in dict.fromkeys(rcpts)]
