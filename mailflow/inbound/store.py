"""Storing a received mail raw, before anything else reads it.

Whatever the source (IMAP, inbound SMTP, `mailflow inbound import`), the bytes are committed with their
SHA-256 before the mail is acknowledged, moved or understood; everything after works from this row, so a
crash at any later point loses nothing. The same message twice (same Message-ID and same bytes) is one row,
kept unique by the database itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, Dialect, insert, select
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
    head = head[: header_end(head)]
    match = _MESSAGE_ID_RE.search(head)
    if match is None:
        return ""
    value = re.sub(rb"\s+", b" ", match.group(1)).strip()
    return value.replace(b"\x00", b"").decode("utf-8", "replace")[:300]


def header_end(head: bytes) -> int:
    """Where the header block of ``head`` ends: the start of its first blank line (CRLF, LF or CR line
    ends), as re.search(rb"\r?\n\r?\n|\r\r", head).start() finds it, len(head) when there is none.
    Each search stops at the earliest end found so far (the regex took 20 us a mail, this 5; the inbound
    SMTP server computes it on its one writer thread)."""
    end = len(head)
    first = head.find(b"\n")  # the line ends of the first line are likely those of the blank line
    crlf = first > 0 and head[first - 1] == 0x0D
    for blank in (b"\n\r\n", b"\n\n", b"\r\r") if crlf else (b"\n\n", b"\n\r\n", b"\r\r"):
        at = head.find(blank, 0, end + len(blank))
        if at > 0 and blank[0] == 0x0A and head[at - 1] == 0x0D:
            at -= 1  # "\r\n\r\n", "\r\n\n": the blank line starts with the line end before it
        if 0 <= at < end:
            end = at
    return end


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
    return _store_values(db, [_values(mail) for mail in mails])


def _store_values(db: Database, values: list[dict[str, object]]) -> list[StoredMail]:
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
    known: dict[tuple[str, str], StoredMail] = {}
    if look_first:
        identities = [_identity(v) for v in values]
        for found in connection.execute(
                select(InboundMessage.id, InboundMessage.status, InboundMessage.header_message_id,
                       InboundMessage.sha256)
                .where(InboundMessage.header_message_id.in_({i[0] for i in identities}),
                       InboundMessage.sha256.in_({i[1] for i in identities}))):
            known[(found.header_message_id, found.sha256)] = StoredMail(found.id, False, found.status)
    fresh = _fresh(values, known)
    ids: list[int] = []
    if len(fresh) == 1:  # the usual SMTP commit: the executemany machinery costs more than the insert
        ids = [connection.execute(_INSERT_ONE, next(iter(fresh.values()))).scalar_one()]
    elif fresh:
        ids = list(connection.execute(_INSERT, list(fresh.values())).scalars().all())
    for identity, new_id in zip(fresh, ids, strict=True):
        known[identity] = StoredMail(int(new_id), True, InboundStatus.STORED)
    return _answer(values, known)


def _identity(value: dict[str, object]) -> tuple[str, str]:
    return str(value["header_message_id"]), str(value["sha256"])


def _fresh(values: list[dict[str, object]],
           known: dict[tuple[str, str], StoredMail]) -> dict[tuple[str, str], dict[str, object]]:
    """The values to insert: those not ``known``, each message once."""
    fresh: dict[tuple[str, str], dict[str, object]] = {}
    for value in values:
        identity = _identity(value)
        if identity not in known:
            fresh.setdefault(identity, value)
    return fresh


def _answer(values: list[dict[str, object]], known: dict[tuple[str, str], StoredMail]) -> list[StoredMail]:
    """The row of each of ``values`` in order; a message a second time in ``values`` is not new."""
    stored, seen = [], set()
    for value in values:
        identity = _identity(value)
        mail = known[identity]
        stored.append(mail if identity not in seen else StoredMail(mail.id, False, mail.status))
        seen.add(identity)
    return stored


# (column, the model's default, the type's bind processing)
_Column = tuple[str, Callable[[], object] | None, Callable[[Any], Any] | None]


class Writer:
    """``store_mails`` for one thread that stores again and again (the inbound SMTP server's writer).

    On PostgreSQL it keeps a connection of its own in autocommit and sends the new mails of a call as one
    multi-row INSERT: a statement alone is its own transaction, so its answer comes back only once it is
    committed (WAL flushed) — the mails are recorded before the caller acknowledges them, as with
    store_mails, in one round trip instead of four (the pool's ping, BEGIN, INSERT, COMMIT) and without
    SQLAlchemy's work per statement: one mail 0.6-0.85 -> 0.38 ms, of it CPU 0.35 -> 0.14 ms. All or
    none of the mails of a call are recorded, as one statement either succeeds or changes nothing.
    Anything else — a mail recorded before (an MTA sending again), a connection the server dropped, any
    error — goes to store_mails, which decides as always: found, stored, or raised with nothing recorded.
    On SQLite: store_mails (no round trips to save).

    Not thread-safe: one thread calls ``store`` and ``close``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: psycopg.Connection[Any] | None = None
        self._columns: list[_Column] = []
        self._sql: dict[int, str] = {}  # the INSERT of so many rows

    def store(self, mails: Sequence[Incoming]) -> list[StoredMail]:
        values = [_values(mail) for mail in mails]
        if not values or not self.db.is_postgres:
            return _store_values(self.db, values)
        connection = self._connect()  # raises as store_mails would when the database cannot be reached
        fresh = _fresh(values, {})
        try:
            rows = connection.execute(self._insert_sql(len(fresh)),
                                      [p for value in fresh.values() for p in self._row(value)]).fetchall()
        except psycopg.IntegrityError:
            pass  # autocommit: nothing was recorded, and the connection serves on
        except Exception:
            self.close()  # perhaps the connection itself (the server restarted): a fresh one next time
        else:
            known = {(str(message_id), str(sha256)): StoredMail(int(new_id), True, InboundStatus.STORED)
                     for new_id, message_id, sha256 in rows}
            return _answer(values, known)
        return _store_values(self.db, values)

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):  # already broken: nothing to give back
                connection.close()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None:
            pooled = self.db.engine.raw_connection()  # the engine's connect arguments and checks
            pooled.detach()  # ours for good: closed by close(), never handed to another
            connection = cast("psycopg.Connection[Any]", pooled.dbapi_connection)
            connection.rollback()
            connection.autocommit = True
            self._connection = connection
            if not self._columns:
                self._columns = _insert_plan(self.db.engine.dialect)
        return self._connection

    def _insert_sql(self, rows: int) -> str:
        if rows not in self._sql:
            names = ", ".join(name for name, _, _ in self._columns)
            row = "(" + ", ".join(["%s"] * len(self._columns)) + ")"
            self._sql[rows] = (f"INSERT INTO {InboundMessage.__tablename__} ({names}) "
                               f"VALUES {', '.join([row] * rows)} RETURNING id, header_message_id, sha256")
        return self._sql[rows]

    def _row(self, value: dict[str, object]) -> list[object]:
        """The bound values of one row, as SQLAlchemy binds them: the model's defaults for the columns
        not given, each through its type's bind processing (aware UTC datetimes stored naive)."""
        row = []
        for name, default, process in self._columns:
            item = value[name] if name in value else default() if default is not None else None
            row.append(process(item) if process is not None else item)
        return row


def _insert_plan(dialect: Dialect) -> list[_Column]:
    """(column, default, bind processor) of each column an INSERT of store_mails sets: those _values gives
    and those with a default in the model, as SQLAlchemy's INSERT sets them; the rest stay NULL."""
    given = set(_values(Incoming(b"", "smtp")))
    plan: list[_Column] = []
    for column in InboundMessage.__table__.columns:
        default: Callable[[], object] | None = None
        if column.default is not None:
            model_default: Any = column.default
            if model_default.is_callable:
                default = lambda d=model_default: d.arg(None)  # noqa: E731
            elif model_default.is_scalar:
                default = lambda d=model_default: d.arg  # noqa: E731
            else:
                raise ValueError(f"inbound_messages.{column.name}: a default Writer cannot compute")
        elif column.server_default is not None:
            raise ValueError(f"inbound_messages.{column.name}: a server default Writer does not set")
        if column.name in given or default is not None:
            plan.append((column.name, default, column.type.dialect_impl(dialect).bind_processor(dialect)))
    return plan


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
