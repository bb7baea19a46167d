"""Complaints: ARF (RFC 5965 feedback reports) and the non-ARF variants we know.

Owns "is this a complaint, about whom, of what type".  Kinds handled: a
multipart/report with a message/feedback-report part, Hotmail's old JMRP
forward (X-HmXmrOriginalRecipient in the returned message) and Apple Mail's
one-click unsubscribe (X-Apple-Unsubscribe).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.dsn import field_blocks
from mailflow.inbound.bounce.mailtext import first_address, normalise_newlines, part_text

# Sisimai's placeholder when a report does not name the complaining recipient.
UNKNOWN_RECIPIENT = "undisclosed-recipient-in-headers@libsisimai.org.invalid"


@dataclass(frozen=True)
class Complaint:
    recipients: tuple[str, ...]
    feedback_type: str


def find_complaint(ctx: Context) -> Complaint | None:
    for finder in (_arf, _hotmail, _apple):
        found = finder(ctx)
        if found is not None:
            return found
    return None


def _report_fields(ctx: Context) -> dict[str, str] | None:
    for part in ctx.msg.walk():
        if part.get_content_type() == "message/feedback-report":
            fields: dict[str, str] = {}
            payload = part.get_payload()
            if isinstance(payload, list):
                text = "\n".join(
                    f"{k}: {v}" for sub in payload if isinstance(sub, Message) for k, v in sub.items()
                )
            else:
                text = part_text(part)
            for block in field_blocks(normalise_newlines(text)):
                for key, value in block.items():
                    fields.setdefault(key, value)
            return fields
    return None


def _arf(ctx: Context) -> Complaint | None:
    fields = _report_fields(ctx)
    ctype = ctx.header("Content-Type").lower()
    if fields is None and "feedback-report" not in ctype:
        return None
    fields = fields or {}
    ftype = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
    rcpt = first_address(fields.get("original-rcpt-to", ""))
    if not rcpt and ctx.original is not None:
        # like Sisimai: the returned message's To, even when it hides the recipients
        rcpt = first_address(str(ctx.original.get("To") or ""))
    elif not rcpt:
        rcpt = first_address(fields.get("removal-recipient", ""))
    return Complaint((rcpt or UNKNOWN_RECIPIENT,), ftype)


def _hotmail(ctx: Context) -> Complaint | None:
    if ctx.original is None:
        return None
    rcpt = str(ctx.original.get("X-HmXmrOriginalRecipient") or "")
    if not rcpt:
        return None
    return Complaint((first_address(rcpt) or UNKNOWN_RECIPIENT,), "abuse")


def _apple(ctx: Context) -> Complaint | None:
    if ctx.header("X-Apple-Unsubscribe").strip().lower() != "true":
        return None
    return Complaint((first_address(ctx.from_) or UNKNOWN_RECIPIENT,), "opt-out")
