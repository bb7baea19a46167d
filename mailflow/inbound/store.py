"""Storing a received mail raw, before anything else reads it.

Whatever the source (IMAP, inbound SMTP, `mailflow inbound import`), the bytes are committed with their
SHA-256 before the mail is acknowledged, moved or understood; everything after works from this row, so a
crash at any later point loses nothing. The same message twice (same Message-ID and same bytes) is one row,
kept unique by the database itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from mailflow.db import Database
from mailflow.models import InboundMessage, InboundStatus

SOURCES = ("imap", "smtp", "import")
# Only the header block is looked at here; its end is found within this many bytes or not at all.
_HEAD_LIMIT = 256 * 1024
_MESSAGE_ID_RE = re.compile(rb"^message-id[ \t]*:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.I | re.M)


_INSERT = insert(InboundMessage).returning(InboundMessage.id)


@dataclass(frozen=True)
class StoredMail:
    id: int
    new: bool  # False: this exact message had been recorded before
    status: str


def header_message_id(raw: bytes) -> str:
    """The Message-ID header of ``raw`` as written (folding removed), '' when there is none."""
    head = raw[:_HEAD_LIMIT]
    end = re.search(rb"\r?\n\r?\n|\r\r", head)
    if end is not None:
        head = head[: end.start()]
    match = _MESSAGE_ID_RE.search(head)
    if match is None:
        return ""
    value = re.sub(rb"\s+", b" ", match.group(1)).strip()
    return value.replace(b"\x00", b"").decode("utf-8", "replace")[:300]


def store_mail(db: Database, raw: bytes, source: str, source_ref: str = "", envelope_from: str = "",
               envelope_to: str = "") -> StoredMail:
    """Commit ``raw`` as an InboundMessage (or find the row already holding it). Raises only when the
    database cannot take it; then nothing was recorded and the sender must keep the mail."""
    if source not in SOURCES:
        raise ValueError(f"unknown inbound source {source!r}")
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    message_id = header_message_id(raw)
    values = {"source": source, "source_ref": _text(source_ref, 200), "header_message_id": message_id,
              "sha256": digest, "size": len(raw), "raw": raw, "envelope_from": _text(envelope_from, 320),
              "envelope_to": _text(envelope_to, 1000)}  # the other columns take the model's defaults
    try:
        # One prebuilt Core INSERT with bound values: an ORM session with .values(...) built its cache key
        # over the whole raw mail every time, 4x the cost of the insert (bench/inbound.py).
        with db.engine.begin() as connection:
            new_id = connection.execute(_INSERT, values).scalar_one()
            return StoredMail(int(new_id), True, InboundStatus.STORED)
    except IntegrityError:
        pass  # the unique (Message-ID, SHA-256) pair: recorded before
    with db.session() as session:
        found = session.execute(
            select(InboundMessage.id, InboundMessage.status)
            .where(InboundMessage.header_message_id == message_id, InboundMessage.sha256 == digest)
        ).one()
        return StoredMail(found.id, False, found.status)


def printable(text: str) -> str:
    """Text as every backend stores it: PostgreSQL refuses NUL characters, which any mail may carry."""
    return text.replace("\x00", "")


def _text(value: str, limit: int) -> str:
    return printable(value)[:limit]  # envelope values come from the network


def store_raw(db: Database, raw: bytes, source: str, source_ref: str = "", envelope_from: str = "",
              envelope_to: str = "") -> int | None:
    """Commit ``raw``; returns the new row's id, or None when the same message was already recorded."""
    stored = store_mail(db, raw, source, source_ref, envelope_from, envelope_to)
    return stored.id if stored.new else None
