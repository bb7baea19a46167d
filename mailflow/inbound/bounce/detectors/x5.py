"""X5: a gateway that wraps the real DSN as its returned message (message/rfc822 holding a report).

The outer notice lists nothing; the nested multipart/report carries the recipients,
status codes and diagnostics, so read that one.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context, build
from mailflow.inbound.bounce.detectors import rfc3464
from mailflow.inbound.bounce.model import Hit

NAME = "x5"


def detect(ctx: Context) -> list[Hit] | None:
    inner = ctx.original
    if ctx.dsn_blocks or inner is None or inner.get_content_type() != "multipart/report":
        return None
    nested = build(inner, str(inner.get("Subject") or ""), str(inner.get("From") or ""))
    if not nested.dsn_blocks:
        return None
    return rfc3464.detect(nested)
