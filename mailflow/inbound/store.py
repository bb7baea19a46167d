"""Storing a received mail raw, before anything else reads it.

Whatever the source (IMAP, inbound SMTP, `mailflow inbound import`), the bytes are committed with their
SHA-256 before the mail is acknowledged, moved or understood; everything after works from this row, so a
crash at any later point loses nothing. The same message twice (same Message-ID and same bytes) is one row,
kept unique by the database itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from mailflow.db import Database
from mailflow.models import InboundMessage, InboundStatus

SOURCES = ("imap", "smtp", "import")
# Only the header block is looked at here; its end is found within this many bytes or not at all.
_HEAD_LIMIT = 256 * 1024
_MESSAGE_ID_RE = re.compile(rb"^message-id[ \t]*:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.I | re.M)


# Prebuilt Core INSERTs: one row (the plain single execute), or many (RETURNING in the order given).
_INSERT_ONE = insert(InboundMessage).returning(InboundMessage.id)
_INSERT = insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class StoredMail:
    id: int
    new: bool  # False: this exact message had been recorded before
    status: str


@dataclass(frozen=True)
class Incoming:
    """One received mail as a source hands it over, before it is stored."""

    raw: bytes
    source: str
    source_ref: str = ""
    envelope_from: str = ""
    envelope_to: str = ""


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
    return store_mails(db, [Incoming(raw, source, source_ref, envelope_from, envelope_to)])[0]


def store_mails(db: Database, mails: Sequence[Incoming]) -> list[StoredMail]:
    """Commit every mail of ``mails`` in one transaction — one commit (one WAL flush) for a whole IMAP
    batch or a group of SMTP mails instead of one each — and return their rows in the same order. A mail
    recorded before (or twice in ``mails``) is found, not stored again. Raises only when the database
    cannot take them; then none was recorded."""
    values = [_values(mail) for mail in mails]
    try:
        # Mails are nearly always new: insert straight away, one round trip less before the commit.
        with db.engine.begin() as connection:
            return _store(connection, values, look_first=False)
    except IntegrityError:
        pass  # one of them recorded before (an MTA sending again, a re-read folder) or at this moment
    with db.engine.begin() as connection:
        return _store(connection, values, look_first=True)


def _values(mail: Incoming) -> dict[str, object]:
    if mail.source not in SOURCES:
        raise ValueError(f"unknown inbound source {mail.source!r}")
    raw = bytes(mail.raw)
    return {"source": mail.source, "source_ref": _text(mail.source_ref, 200),
            "header_message_id": header_message_id(raw), "sha256": hashlib.sha256(raw).hexdigest(),
            "size": len(raw), "raw": raw, "envelope_from": _text(mail.envelope_from, 320),
            "envelope_to": _text(mail.envelope_to, 1000)}  # the other columns take the model's defaults


def _store(connection: Connection, values: list[dict[str, object]], *, look_first: bool) -> list[StoredMail]:
    """The rows of ``values`` in ``connection``'s transaction: with ``look_first`` one SELECT for those
    recorded before; one INSERT (bound values, prebuilt: an ORM session with .values(...) built its cache
    key over the whole raw mail every time, 4x the cost of the insert) for the rest."""
    identities = [(str(v["header_message_id"]), str(v["sha256"])) for v in values]
    known: dict[tuple[str, str], StoredMail] = {}
    if look_first:
        for found in connection.execute(
                select(InboundMessage.id, InboundMessage.status, InboundMessage.header_message_id,
                       InboundMessage.sha256)
                .where(InboundMessage.header_message_id.in_({i[0] for i in identities}),
                       InboundMessage.sha256.in_({i[1] for i in identities}))):
            known[(found.header_message_id, found.sha256)] = StoredMail(found.id, False, found.status)
    fresh: dict[tuple[str, str], dict[str, object]] = {}
    for identity, value in zip(identities, values, strict=True):
        if identity not in known:
            fresh.setdefault(identity, value)
    ids: list[int] = []
    if len(fresh) == 1:  # the usual SMTP commit: the executemany machinery costs more than the insert
        ids = [connection.execute(_INSERT_ONE, next(iter(fresh.values()))).scalar_one()]
    elif fresh:
        ids = list(connection.execute(_INSERT, list(fresh.values())).scalars().all())
    for identity, new_id in zip(fresh, ids, strict=True):
        known[identity] = StoredMail(int(new_id), True, InboundStatus.STORED)
    stored, seen = [], set()
    for identity in identities:
        mail = known[identity]
        stored.append(mail if identity not in seen else StoredMail(mail.id, False, mail.status))
        seen.add(identity)
    return stored


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
