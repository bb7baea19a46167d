"""qmail (and qmail-based: Yahoo's old MTA, vpopmail) plain-text bounces."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors._spec import TextFormat
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

NAME = "qmail"
FAMILIES: tuple[str, ...] = ("lhost-qmail", "lhost-yahoo")
_CLOSING = lazy(
    r"(Giving up on \S+|I'm not going to try again; this message has been in the queue too long\.)", re.I
)
FORMAT = TextFormat(
    name=NAME,
    markers=(
        "this is the qmail-send program",
        "we're sorry. there's a problem delivering your mail",
        "i'm afraid i wasn't able to deliver your message",
        "i wasn't able to deliver your message",
        "sorry, we were unable to deliver your message to the following address",
        "he/her is not ",
        "your message has been rejected by mail server",
    ),
    starts=("to the following address", "following addresses.", "following addresses:", "\n<"),
    ends=(
        "--- below this line is a copy of the message",
        "--- enclosed are the original headers",
        "--- original message follows",
        "--- below the next line is a copy of the message",
    ),
)


def detect(ctx: Context) -> list[Hit] | None:
    hits = FORMAT.detect(ctx)
    for hit in hits or ():
        # qmail's own closing sentences say nothing about the cause
        hit.diagnostic = _CLOSING.sub("", hit.diagnostic).strip()
        if "delayed" in ctx.subject.lower() or "temporary" in hit.diagnostic.lower()[:40]:
            hit.action = "delayed"
    return hits
