"""What every detector may look at, computed once per mail.

Owns the single walk over the MIME tree: the notice text (text parts outside
the returned message), the DSN field blocks, the returned original message and
a few decoded headers.  Text is capped so huge bodies cost nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

from mailflow.inbound import mime
from mailflow.inbound.bounce.dsn import Block, delivery_status_text, field_blocks
from mailflow.inbound.bounce.mailtext import TEXT_CAP, normalise_newlines, part_text
from mailflow.inbound.bounce.patterns import lazy

_ORIGINAL_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/rfc822-headers",
    "text/rfc822-header",
)
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_MAX_PARTS = 64


@dataclass
class Context:
    msg: Message
    subject: str
    from_: str
    notice: str = ""
    dsn_blocks: list[Block] = field(default_factory=list)
    original: Message | None = None
    original_text: str = ""
    content_types: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """The first value of a header of the bounce itself, '' when it has none."""
        values = self.headers.get(name.lower())
        return self._fetched(*values[0]) if values else ""

    def header_all(self, name: str) -> list[str]:
        return [self._fetched(*pair) for pair in self.headers.get(name.lower(), ())]

    def _fetched(self, name: str, raw: str) -> str:
        # what Message.get returns for this field, done only for the fields a detector asks for
        return str(self.msg.policy.header_fetch_parse(name, raw))

    @cached_property
    def headers(self) -> dict[str, list[tuple[str, str]]]:
        """The bounce's raw header fields by lower-cased name, read once (Message.get scans them all
        per call, and Message.items() prepares every value, most of which no detector reads)."""
        found: dict[str, list[tuple[str, str]]] = {}
        for name, raw in self.msg.raw_items():
            found.setdefault(name.lower(), []).append((name, raw))
        return found

    @cached_property
    def from_lower(self) -> str:
        return self.from_.lower()

    @cached_property
    def notice_lower(self) -> str:
        """The whole notice lower-cased, once for the detectors that read all of it."""
        return self.notice.lower()

    @cached_property
    def head_lower(self) -> str:
        """The notice's first 20,000 characters lower-cased, once for all detectors."""
        return self.notice[:20000].lower()

    @property
    def is_dsn(self) -> bool:
        return bool(self.dsn_blocks)


def build(msg: Message, subject: str, from_: str) -> Context:
    ctx = Context(msg=msg, subject=subject, from_=from_)
    notes: list[str] = []
    _walk(msg, ctx, notes, depth=0)
    ctx.notice = normalise_newlines("\n".join(notes))[: TEXT_CAP * 2]
    return ctx


def _walk(part: Message, ctx: Context, notes: list[str], depth: int) -> None:
    if len(ctx.content_types) >= _MAX_PARTS or depth > 8:
        return
    ctype = part.get_content_type()
    ctx.content_types.append(ctype)
    if ctype in _DSN_TYPES:
        ctx.dsn_blocks.extend(field_blocks(normalise_newlines(delivery_status_text(part))))
        return
    if ctype in _ORIGINAL_TYPES and part is not ctx.msg:
        _keep_original(part, ctx)
        return
    payload = part.get_payload()
    if ctype.startswith("multipart/") and isinstance(payload, str):
        # boundary missing or mistyped: the whole body is one text, still worth reading
        notes.append(normalise_newlines(payload[:TEXT_CAP]))
        return
    if part.is_multipart():
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _walk(sub, ctx, notes, depth + 1)
        return
    if ctype.startswith("text/") or ctype in ("", "application/octet-stream") and part is ctx.msg:
        text = part_text(part)
        if ctype == "text/html":
            text = _strip_html(text)
        notes.append(text)


def _keep_original(part: Message, ctx: Context) -> None:
    if ctx.original is not None:
        return
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        ctx.original = payload[0]
        ctx.original_text = "\n".join(f"{k}: {v}" for k, v in ctx.original.items())
        return
    text = part_text(part)
    ctx.original_text = normalise_newlines(text)
    try:
        ctx.original = mime.message_from_string(ctx.original_text[:TEXT_CAP])
    except Exception:
        ctx.original = None


_TAG_RE = lazy(r"<[^>]{0,2000}>")
_BR_RE = lazy(r"(?i)<\s*(br|/p|/div|/tr|p|div|tr)\b[^>]*>")


def _strip_html(text: str) -> str:
    import html

    text = _BR_RE.sub("\n", text)
    return html.unescape(_TAG_RE.sub("", text))
