"""Text helpers shared by the bounce detectors: decoding parts, addresses, codes.

Everything here works on already line-end-normalised text (LF only) and caps
how much it looks at, so a huge body never turns into a huge regex scan.
"""

from __future__ import annotations

import re
from email.message import Message

from mailflow.inbound.bounce.patterns import lazy

# Bounce notices are short; the first 64 KiB of a text part hold every notice we know.
TEXT_CAP = 64 * 1024

# The look-behind: a match starts where a local part can start, never inside a run of local-part
# characters (the leftmost match never does anyway). Without it a megabyte with no "@" cost one
# scan to its end from every position: quadratic, 2 s for a hostile notice.
ADDRESS_RE = lazy(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
    r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
STATUS_RE = lazy(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
REPLY_RE = lazy(r"(?<![\d.])([245][0-5]\d)(?:[ -]|$)")
WS_RE = lazy(r"\s+")


def collapse(text: str) -> str:
    """Whitespace-collapse a diagnostic, dropping repeated multi-line reply prefixes.

    "550-5.7.1 foo 550-5.7.1 bar 550 5.7.1 baz" becomes "550-5.7.1 foo bar baz" so
    phrases split over reply lines still match.
    """
    text = WS_RE.sub(" ", text).strip()
    m = _CONT_RE.search(text)
    if m:
        prefix = lazy(r"(?<=\S) " + m.group(1) + r"[ -](?:" + re.escape(m.group(2) or "") + r" )?")
        head, tail = text[: m.end()], text[m.end() :]
        text = head + prefix.sub(" ", tail)
    return text


_CONT_RE = lazy(r"\b([45]\d\d)-(\d\.\d{1,3}\.\d{1,3})?")


def part_text(part: Message, cap: int = TEXT_CAP) -> str:
    """Decoded text of a non-multipart part, capped, never raising."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64/qp: fall back to the raw payload
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw[:cap] if isinstance(raw, str) else ""
    payload = payload[:cap]
    charset = _charset(part)
    for enc in (charset, "utf-8", "latin-1"):
        if not enc:
            continue
        try:
            return payload.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _charset(part: Message) -> str:
    try:
        cs = part.get_content_charset() or ""
    except Exception:
        return ""
    return {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "x-unknown": ""}.get(cs, cs)


def first_address(text: str) -> str:
    """First e-mail address in `text`, lower-cased, '' when none."""
    m = ADDRESS_RE.search(text)
    return clean_address(m.group(0)) if m else ""


def clean_address(addr: str) -> str:
    addr = addr.strip().strip("<>\"'.,;:()[]").lower()
    return addr


def find_status(text: str) -> str:
    """First enhanced status code (e.g. 5.1.1) in `text`, '' when none."""
    m = STATUS_RE.search(text)
    return ".".join(m.groups()) if m else ""


def find_reply_code(text: str) -> str:
    """First SMTP reply code (e.g. 550) in `text`, '' when none."""
    m = REPLY_RE.search(text)
    return m.group(1) if m else ""


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
