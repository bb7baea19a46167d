"""Complaints: ARF (RFC 5965 feedback reports) and the non-ARF variants we know.

Owns "is this a complaint, about whom, of what type".  Kinds handled:

- an ARF report (RFC 5965, RFC 6650): the machine-readable part is message/feedback-report (some
  reporters label it text/plain; its "Feedback-Type:" field still says what it is). The complaining
  recipients are every `Original-Rcpt-To` field (the field may repeat, one per recipient); without
  one, the To of the returned message or its headers (RFC 6650 allows returning headers only); a
  report that redacts or hides the recipient (RFC 6590) gets Sisimai's placeholder address;
- Hotmail's old JMRP forward (X-HmXmrOriginalRecipient in the returned message);
- Apple Mail's one-click unsubscribe (X-Apple-Unsubscribe);
- Amazon SES complaint notifications (SNS JSON, `notificationType: Complaint`, as AWS documents
  them): `complainedRecipients` and `complaintFeedbackType`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from mailflow.inbound import mime
from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.detectors.amazonses import notification
from mailflow.inbound.bounce.mailtext import (
    ADDRESS_RE,
    clean_address,
    first_address,
    normalise_newlines,
    part_text,
)
from mailflow.inbound.bounce.patterns import lazy

# Sisimai's placeholder when a report does not name the complaining recipient.
UNKNOWN_RECIPIENT = "undisclosed-recipient-in-headers@libsisimai.org.invalid"
_MAX_PARTS = 64


@dataclass(frozen=True)
class Complaint:
    recipients: tuple[str, ...]
    feedback_type: str


def find_complaint(ctx: Context) -> Complaint | None:
    for finder in (_arf, _hotmail, _apple, _ses):
        found = finder(ctx)
        if found is not None:
            return found
    return None


_FIELD_RE = lazy(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")


def _fields(text: str) -> list[tuple[str, str]]:
    """Header-style fields (name lower-cased) in order, repeats kept, folded lines joined."""
    found: list[tuple[str, str]] = []
    for line in normalise_newlines(text).split("\n"):
        if line[:1] in (" ", "\t") and found:
            name, value = found[-1]
            found[-1] = (name, value + " " + line.strip())
            continue
        m = _FIELD_RE.match(line)
        if m:
            found.append((m.group(1).lower(), m.group(2).strip()))
    return found


def _report(ctx: Context) -> list[tuple[str, str]] | None:
    """The fields of the feedback report part: message/feedback-report, or a part that holds them."""
    if "message/feedback-report" not in ctx.content_types and "feedback-type:" not in ctx.head_lower:
        return None  # neither the part nor its fields in the notice's text parts: no need to walk
    for count, part in enumerate(ctx.msg.walk()):
        if count > _MAX_PARTS:
            break
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            return _fields(_part_fields_text(part))
        if ctype == "text/plain" and part is not ctx.msg and _is_report_text(part):
            return _fields(part_text(part))
    return None


def _part_fields_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser read the fields as headers of a sub-message
        return "\n".join(f"{k}: {v}" for sub in payload if isinstance(sub, Message) for k, v in sub.items())
    return part_text(part)


def _is_report_text(part: Message) -> bool:
    head = part_text(part, 4000)
    return re.search(r"^Feedback-Type:\s*\S", head, re.M | re.I) is not None and "user-agent:" in head.lower()


def _arf(ctx: Context) -> Complaint | None:
    fields = _report(ctx)
    ctype = ctx.header("Content-Type").lower()
    if fields is None and "feedback-report" not in ctype:
        return None
    fields = fields or []
    values = dict(reversed(fields))  # the first of a repeated field
    ftype = (values.get("feedback-type", "") or "abuse").split()[0].strip().lower()
    recipients = [a for name, value in fields if name == "original-rcpt-to" for a in _addresses(value)]
    if not recipients:
        recipients = _addresses(_original_to(ctx))[:1]
    return Complaint(tuple(dict.fromkeys(recipients)) or (UNKNOWN_RECIPIENT,), ftype)


def _addresses(text: str) -> list[str]:
    return [clean_address(m.group(0)) for m in ADDRESS_RE.finditer(text)]


def _original_to(ctx: Context) -> str:
    """The To of the returned message, or of its headers when only those came back."""
    if ctx.original is not None:
        return str(ctx.original.get("To") or "")
    for count, part in enumerate(ctx.msg.walk()):
        if count > _MAX_PARTS:
            break
        if part is ctx.msg or part.get_content_maintype() == "multipart":
            continue
        if part.get_content_type() in ("text/plain", "message/feedback-report"):
            continue
        text = part_text(part, 16000)
        if re.match(r"(?:[\w-]+:[^\n]*\n)+", text):
            returned = mime.message_from_string(text)
            return str(returned.get("To") or "")
    return ""


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


def _ses(ctx: Context) -> Complaint | None:
    data = notification(ctx)
    if data is None or data.get("notificationType") != "Complaint":
        return None
    complaint = data.get("complaint") or {}
    recipients = [
        clean_address(str(r.get("emailAddress") or ""))
        for r in complaint.get("complainedRecipients") or []
        if isinstance(r, dict)
    ]
    ftype = str(complaint.get("complaintFeedbackType") or "abuse").strip().lower() or "abuse"
    return Complaint(tuple(a for a in recipients if "@" in a) or (UNKNOWN_RECIPIENT,), ftype)
