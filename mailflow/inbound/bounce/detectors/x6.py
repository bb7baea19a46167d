"""X6 (unknown MTA, "We had trouble delivering your message") notices."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import make_hit, smtp_command

NAME = "x6"
FAMILIES: tuple[str, ...] = ("lhost-x6",)
_ERR = lazy(
    r"(?:rejected recipient|returned permanent errors:)\s*<?([^\s<>]+@[^\s<>]+[^\s<>.])>?[.\s].*$",
    re.I | re.M,
)


def detect(ctx: Context) -> list[Hit] | None:
    if "we had trouble delivering your message" not in ctx.head_lower[:2000]:
        return None
    hits = []
    for m in _ERR.finditer(ctx.notice):
        diag = m.group(0)
        hits.append(make_hit(m.group(1), diag, command=smtp_command(diag) or _paren_command(diag)))
    return hits or None


def _paren_command(text: str) -> str:
    m = re.search(r"\((?:Error following )?(RCPT|DATA|MAIL|HELO|EHLO)\b", text)
    return m.group(1) if m else ""
