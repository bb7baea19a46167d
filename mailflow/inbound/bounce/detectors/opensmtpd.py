"""OpenSMTPD text bounces: "addr: reason" lines after a fixed introduction."""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors._spec import TextFormat
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

NAME = "opensmtpd"
FAMILIES: tuple[str, ...] = ("lhost-opensmtpd",)
FORMAT = TextFormat(
    name=NAME,
    markers=(
        "this is the mailer-daemon, please do not reply to this e-mail",
        "this is the mailer-daemon, please do not reply to this email",
    ),
    starts=("following list of recipients:",),
    ends=("below is a copy of the original message", "original message follows"),
    address_line=lazy(r"^\s*<?([^\s<>@]+@[^\s<>:]+?)>?:\s"),
)


def detect(ctx: Context) -> list[Hit] | None:
    hits = FORMAT.detect(ctx)
    if hits and "delay" in ctx.subject.lower():
        for hit in hits:
            hit.action = "delayed"
    return hits
