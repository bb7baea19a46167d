"""Amazon SES: SNS JSON notifications (Bounce / Complaint / Delivery) sent by mail.

The JSON layout is AWS's documented "Amazon SES notification contents". Bounces are read here;
complaints by `bounce.arf`; text DSNs from SES by the generic RFC 3464 reader.
"""

from __future__ import annotations

import json
from typing import Any

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.mailtext import clean_address, collapse, find_reply_code
from mailflow.inbound.bounce.model import Hit

NAME = "amazonses"
FAMILIES: tuple[str, ...] = ("lhost-amazonses",)


def notification(ctx: Context) -> dict[str, Any] | None:
    """The SES notification a mail carries (its SNS envelope unwrapped), None when it is none."""
    body = ctx.notice.lstrip()
    if not body.startswith("{") or "notificationType" not in body[:4000]:
        return None
    return _load(body)


def detect(ctx: Context) -> list[Hit] | None:
    data = notification(ctx)
    if data is None:
        return None
    if data.get("notificationType") != "Bounce":
        return []  # Delivery / Complaint JSON is not a failure report
    bounce = data.get("bounce") or {}
    transient = bounce.get("bounceType") == "Transient"
    hits = []
    for r in bounce.get("bouncedRecipients") or []:
        diag = collapse(str(r.get("diagnosticCode") or ""))
        diag_type, _, text = diag.partition(";") if ";" in diag[:12] else ("", "", diag)
        hits.append(
            Hit(
                address=clean_address(str(r.get("emailAddress") or "")),
                action="delayed" if transient else "failed",
                status=str(r.get("status") or ""),
                reply_code=find_reply_code(text),
                diagnostic=text.strip(),
                diagnostic_type=diag_type.strip().upper(),
            )
        )
    return hits


def _load(body: str) -> dict[str, Any] | None:
    text = body[: body.rfind("}") + 1]
    try:
        outer = json.loads(text)
    except ValueError:
        try:  # mail transport folded the long JSON lines
            outer = json.loads(text.replace("\n ", "").replace("\n", ""))
        except ValueError:
            return None
    inner = outer.get("Message") if isinstance(outer, dict) else None
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except ValueError:
            return None
    data = inner if isinstance(inner, dict) else outer
    return data if isinstance(data, dict) else None
