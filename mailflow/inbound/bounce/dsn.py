"""Our own RFC 3464 reader: message/delivery-status parts and DSN fields in text.

Owns turning per-recipient DSN field blocks into `Hit`s.  Works on field text
so the same code reads a real message/delivery-status part and the DSN fields
some MTAs paste into a text/plain notice.
"""

from __future__ import annotations

from email.message import Message

from mailflow.inbound.bounce.mailtext import (
    ADDRESS_RE,
    clean_address,
    collapse,
    find_reply_code,
    find_status,
)
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FIELD_RE = lazy(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")
_SKIP_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_ACTION_MAP = {"failure": "failed", "fail": "failed", "expired": "failed", "delay": "delayed"}

Block = dict[str, str]
_RECIPIENT_FIELDS = frozenset({"final-recipient", "original-recipient"})


def field_blocks(text: str) -> list[Block]:
    """Split DSN field text into blocks of lower-cased field name -> value."""
    blocks: list[Block] = []
    current: Block = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        m = FIELD_RE.match(line)
        if m:
            last = m.group(1).lower()
            if last in _RECIPIENT_FIELDS and last in current:
                # next recipient's fields without the blank line that should separate them
                blocks.append(current)
                current = {}
            current.setdefault(last, m.group(2).strip())
        else:
            last = ""
    if current:
        blocks.append(current)
    return blocks


# A report has a block for the message and one per recipient; past this many it is not a report but
# a mail built to be slow (blank lines by the hundred thousand, each an empty block).
MAX_BLOCKS = 1000


def delivery_status_text(part: Message) -> str:
    """Field text of a message/delivery-status part, whatever shape the parser gave it."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for sub in payload[:MAX_BLOCKS]:
            if isinstance(sub, Message):
                lines = [f"{k}: {v}" for k, v in sub.items()]
                body = sub.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(body)  # fields the parser could not read as headers
                chunks.append("\n".join(lines))
        return "\n\n".join(chunks)
    if isinstance(payload, str):
        try:
            raw = part.get_payload(decode=True)
        except Exception:
            raw = None
        if isinstance(raw, bytes):
            return raw.decode("utf-8", "replace")
        return payload
    return ""


def hits_from_blocks(blocks: list[Block]) -> list[Hit]:
    """Per-recipient blocks -> hits, skipping delivered/relayed ones."""
    hits: list[Hit] = []
    for block in blocks:
        hit = hit_from_block(block)
        if hit is not None:
            hits.append(hit)
    return hits


_LOOSE_RE = lazy(r'("[^"]+"|[^\s<>;"]+)@[^\s<>;"]+')


def _recipient(block: Block) -> str:
    for name in ("final-recipient", "original-recipient", "x-actual-recipient"):
        value = block.get(name, "")
        if value:
            value = value.split(";", 1)[-1]
            m = ADDRESS_RE.search(value) or _LOOSE_RE.search(value)
            if m:
                # a quoted local part stays quoted; a dot-less host (mailhub0) is still an address
                quoted = _LOOSE_RE.search(value)
                if quoted and quoted.group(1).startswith('"'):
                    return quoted.group(0).lower()
                return clean_address(m.group(0))
    return ""


def hit_from_block(block: Block) -> Hit | None:
    address = _recipient(block)
    if not address:
        return None
    action = block.get("action", "").strip().lower().split(" ")[0]
    action = _ACTION_MAP.get(action, action)
    if action in _SKIP_ACTIONS:
        return None
    status_field = find_status(block.get("status", ""))
    if status_field.startswith("2"):
        return None
    diag_type, diag = _diagnostic(block.get("diagnostic-code", ""))
    status = prefer_status(status_field, find_status(diag))
    return Hit(
        address=address,
        action=action if action in ("failed", "delayed") else "",
        status=status,
        reply_code=find_reply_code(diag),
        diagnostic=diag,
        diagnostic_type=diag_type,
        rhost=block.get("remote-mta", "").split(";", 1)[-1].strip().split(" ")[0].strip("[]"),
    )


def _diagnostic(value: str) -> tuple[str, str]:
    value = collapse(value)
    if ";" in value:
        kind, _, text = value.partition(";")
        if len(kind) <= 12 and " " not in kind.strip():
            return kind.strip().upper(), text.strip()
    return "", value


def prefer_status(field: str, from_text: str) -> str:
    """A specific code in the diagnostic beats a vague x.0.0 Status field."""
    if not field:
        return from_text
    if from_text and from_text[0] == field[0] and field.endswith(".0.0") and not from_text.endswith(".0.0"):
        return from_text
    return field
