"""Understanding one raw inbound mail: bounce, complaint, auto-reply, reply or other.

Public API: `analyze(raw) -> Analysis` (never raises) with the `Analysis` and
`FailedRecipient` records.  Bounce parsing lives in `mailflow.inbound.bounce`.

Why the stdlib parser and not mail-parser in the hot path: measured on the
Sisimai corpus (311 mails, one core), `mailparser.parse_from_bytes` alone ran at
about 570 mails/s (it decodes every part and header eagerly), so it cannot meet
the 1,500 mails/s target even before any bounce logic; the stdlib's compat32
tree is lazy (we decode only the parts we read), and `mailflow.inbound.mime`
builds that same tree in half the stdlib parser's time (see bench/bounce.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import Header, decode_header
from email.message import Message

from mailflow.inbound import mime
from mailflow.inbound.bounce import Context, build, find_failures
from mailflow.inbound.bounce.arf import find_complaint
from mailflow.inbound.bounce.detectors.plaintext import looks_like_bounce
from mailflow.inbound.bounce.mailtext import TEXT_CAP, clean_address, part_text

# Bounces, replies and complaints are small; past this we only keep the head of the
# mail so a 50 MB attachment cannot make one mail cost seconds.
RAW_CAP = 1024 * 1024
KINDS = ("bounce", "complaint", "autoreply", "reply", "other")
# The Subject and From the classifier reads: RFC 5322 lines end at 998 characters, and a header of
# a megabyte (a hostile mail) made every pattern over it cost a tenth of a second.
HEADER_CAP = 2000
ENCODED_HEADER_CAP = 8192


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    action: str
    hard: bool
    reason: str
    status: str
    diagnostic: str
    reply_code: str = ""


@dataclass(frozen=True)
class Analysis:
    kind: str
    recipients: tuple[FailedRecipient, ...]
    message_id: str
    from_address: str
    subject: str
    in_reply_to: tuple[str, ...]
    returned_message_id: str
    returned_return_path: str
    feedback_type: str = ""
    quarantine_reason: str = ""
    text: str = ""


def analyze(raw: bytes) -> Analysis:
    """Classify `raw` (any bytes); broken input gives kind "other" with a quarantine reason."""
    try:
        return _analyze(raw)
    except Exception as exc:  # the contract: never raise on any input
        return _quarantined(f"unparseable: {type(exc).__name__}")


def _quarantined(reason: str) -> Analysis:
    return Analysis(
        kind="other",
        recipients=(),
        message_id="",
        from_address="",
        subject="",
        in_reply_to=(),
        returned_message_id="",
        returned_return_path="",
        quarantine_reason=reason,
    )


def _analyze(raw: bytes) -> Analysis:
    if not isinstance(raw, (bytes, bytearray)) or not raw.strip():
        return _quarantined("empty input")
    raw = bytes(raw[:RAW_CAP]).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    msg = mime.message_from_bytes(raw)  # the stdlib's compat32 tree, built faster
    if not msg.keys():
        return _quarantined("no mail headers")
    subject = header_text(msg, "Subject")[:HEADER_CAP]
    from_ = header_text(msg, "From")[:HEADER_CAP]
    ctx = build(msg, subject, from_)
    base = _Base(msg, ctx, subject, from_)
    complaint = find_complaint(ctx)
    if complaint is not None:
        recipients = tuple(
            FailedRecipient(a, "failed", False, "feedback", "", "") for a in complaint.recipients
        )
        return base.make("complaint", recipients, feedback_type=complaint.feedback_type)
    failures = find_failures(ctx)
    if failures:
        recipients = tuple(
            FailedRecipient(f.address, f.action, f.hard, f.reason, f.status, f.diagnostic, f.reply_code)
            for f in failures
        )
        return base.make("bounce", recipients)
    if is_autoreply(msg, subject):
        return base.make("autoreply", ())
    if failures is not None or looks_like_bounce(ctx):
        return base.make("other", (), quarantine="bounce-like mail without recognisable failed recipients")
    if base.in_reply_to or _REPLY_SUBJECT_RE.match(subject):
        return base.make("reply", ())
    return base.make("other", ())


class _Base:
    """Fields every Analysis carries, computed once."""

    def __init__(self, msg: Message, ctx: Context, subject: str, from_: str) -> None:
        self.msg, self.ctx, self.subject = msg, ctx, subject
        self.from_address = from_header_address(from_)
        self.message_id = _msgid(header_text(msg, "Message-ID"))
        refs = header_text(msg, "In-Reply-To") + " " + header_text(msg, "References")
        self.in_reply_to = tuple(dict.fromkeys(_MSGID_RE.findall(refs)))

    def make(
        self,
        kind: str,
        recipients: tuple[FailedRecipient, ...],
        *,
        feedback_type: str = "",
        quarantine: str = "",
    ) -> Analysis:
        returned = kind in ("bounce", "complaint")
        return Analysis(
            kind=kind,
            recipients=recipients,
            message_id=self.message_id,
            from_address=self.from_address,
            subject=self.subject,
            in_reply_to=self.in_reply_to,
            returned_message_id=_returned_message_id(self.ctx) if returned else "",
            returned_return_path=_verp_address(self.msg, self.ctx),
            feedback_type=feedback_type,
            quarantine_reason=quarantine,
            text=plain_text(self.msg) if kind in ("reply", "autoreply", "other") else "",
        )


# --- headers -------------------------------------------------------------------------------

_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")
_ADDR_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_ANGLED_RE = re.compile(r"<([^<>]*)>\s*$")
_HEADER_CHARSETS = ("utf-8", "big5hkscs", "gb18030", "shift_jis", "euc-kr", "latin-1")


def header_text(msg: Message, name: str) -> str:
    """Decoded header value: RFC 2047 words and raw 8-bit bytes (UTF-8, Big5, GB, ...)."""
    value = msg.get(name)
    if value is None:
        return ""
    if not isinstance(value, Header):
        value = str(value)
        if "=?" in value:
            # the stdlib's encoded-word pattern is quadratic on a long run of unterminated "=?"
            # (100 KB of them: 5 s); an RFC 2047 header is far below this
            value = value[:ENCODED_HEADER_CAP]
    try:
        # compat32 hands raw 8-bit values back as Header objects (charset unknown-8bit)
        parts = decode_header(value)
    except Exception:
        return _undo_surrogates(str(value))
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(_undo_surrogates(chunk))
        else:
            out.append(_decode_bytes(chunk, charset))
    return " ".join(" ".join(out).split())


def _undo_surrogates(text: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogates; decode them properly."""
    try:
        data = text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return text
    return _decode_bytes(data, None)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    known = charset and charset.lower() not in ("unknown-8bit", "x-unknown")
    candidates = ((charset,) if known and charset else ()) + _HEADER_CHARSETS
    for enc in candidates:
        try:
            return data.decode(_CHARSET_ALIASES.get(enc.lower(), enc))
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
}


def from_header_address(value: str) -> str:
    """The address of a From value: the one in angle brackets when there is one, since the display
    name is free text (`"wang@example.com" <attacker@evil.test>` is from evil.test)."""
    angled = _ANGLED_RE.search(value)
    m = _ADDR_RE.search(angled.group(1)) if angled else None
    m = m or _ADDR_RE.search(value)
    return clean_address(m.group(0)) if m else ""


def _msgid(value: str) -> str:
    m = _MSGID_RE.search(value)
    return m.group(1) if m else value.strip()


# --- auto-replies and replies (RFC 3834) ---------------------------------------------------

_AUTO_SUBJECT_RE = re.compile(
    r"自動回覆|自动回复|自動回復|自動返信|休假|不在辦公室|不在办公室|out of (the )?office|automatic reply|"
    r"^\s*auto:|auto[- ]?reply|autoreply|auto[- ]?response|abwesenheit|réponse automatique|"
    r"respuesta automática|risposta automatica|vacation|away from (the )?office",
    re.I,
)
_REPLY_SUBJECT_RE = re.compile(r"^\s*(re|aw|sv|vs|antw|答复|回复|回覆|答覆)\s*(\[\d+\])?\s*[:：]", re.I)


def is_autoreply(msg: Message, subject: str) -> bool:
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return True
    if msg.get("X-Autoresponse") is not None or msg.get("X-Auto-Reply") is not None:
        return True
    if str(msg.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT_RE.search(subject))


def plain_text(msg: Message) -> str:
    """First text/plain part (best effort, capped), for replies shown to support staff."""
    for count, part in enumerate(msg.walk()):
        if count >= 64:
            break
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            return part_text(part, TEXT_CAP).strip()
    return ""


# --- the returned original -----------------------------------------------------------------

_TEXT_MSGID_RE = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.I | re.M)
_VERP_RE = re.compile(r"bounce\+[\w.=+-]+@[\w-]+(?:\.[\w-]+)+", re.I)


def _returned_message_id(ctx: Context) -> str:
    if ctx.original is not None:
        found = _msgid(str(ctx.original.get("Message-ID") or ""))
        if found:
            return found
    for text in (ctx.original_text, _after_notice(ctx.notice)):
        m = _TEXT_MSGID_RE.search(text)
        if m:
            return m.group(1)
    return ""


def _after_notice(notice: str) -> str:
    """Inline originals start after the notice; skip its first lines (the bounce's own words)."""
    return notice[200:]


def _verp_address(msg: Message, ctx: Context) -> str:
    for name in ("Delivered-To", "X-Original-To", "To", "Envelope-To", "X-Envelope-To"):
        for value in ctx.header_all(name):  # the fields read once for the parser, not a scan per name
            m = _VERP_RE.search(value)
            if m:
                return m.group(0).lower()
    if ctx.original is not None:
        m = _VERP_RE.search(str(ctx.original.get("Return-Path") or ""))
        if m:
            return m.group(0).lower()
    for text in (ctx.original_text, ctx.notice):
        m = _VERP_RE.search(text[:TEXT_CAP])
        if m:
            return m.group(0).lower()
    return ""
