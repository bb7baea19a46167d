"""Company proof documents (公司證明文件): accept one upload, judge it by its content, store it safely.

Two places for the bytes (storage.backend, ``Settings.document_backend``):

- ``filesystem``: the upload is streamed to a hidden temporary file under storage.documents_dir while it
  is hashed and measured; reading stops one byte past the size limit. Only a complete, accepted file is
  fsynced and renamed to its random final name, so a refused or failed upload never leaves a file
  behind; the caller removes the stored file again (``discard``) when its database transaction does not
  commit.
- ``database``: the upload is read once to judge it (type, size, SHA-256) without keeping it, then
  ``add_document_row`` streams it into ``document_chunks`` (DB_CHUNK bytes a row) in the caller's
  transaction, beside the application row: both commit or neither, with nothing to clean up. Fixed-size
  bytea/BLOB rows rather than PostgreSQL large objects: they work the same on SQLite, are deleted with
  their document (a cascading foreign key; a large object would outlive its row until vacuumlo), and a
  reader fetches one chunk per short query, holding no connection while a slow client downloads.
  No step holds more than one chunk of a document in memory.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from mailflow.accounts.rules import document_limit_text, has_control_characters, message
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.models import Document, DocumentChunk, DocumentStore
from mailflow.refusals import Refused

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# One row of document_chunks: 40 rows for a 10 MB document; small enough that 20 parallel uploads and
# views hold a few MB between them, large enough that a view is a few dozen short queries.
DB_CHUNK = 256 * 1024
# Magic numbers of the accepted types: what the file is, whatever its name says.
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)
MAX_NAME = 255


class DocumentError(Refused):
    """A refused upload: ``status`` is 422 (missing or wrong type), 413 (too large) or 503 (storage)."""


@dataclass(frozen=True)
class Upload:
    """An uploaded file as the web layer hands it over: the client's name and a readable stream."""

    filename: str
    stream: BinaryIO


@dataclass(frozen=True)
class StoredDocument:
    """An accepted upload. Filesystem: ``path`` is its stored file. Database: ``path`` is None and
    ``source`` the upload itself, rewound, for add_document_row to write in the caller's transaction."""

    path: Path | None
    stored_name: str
    original_name: str
    content_type: str
    size: int
    sha256: str
    source: BinaryIO | None = None


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, JPEG or PNG judged by its first bytes, else None."""
    for magic, content_type, extension in SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    return None


def sanitize_filename(name: str) -> str:
    """The client's file name as safe display text: no folders, no control characters, at most 255."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(ch for ch in base if not has_control_characters(ch)).strip().lstrip(".")
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        base = (stem if keep else base)[: MAX_NAME - len(keep) - 1] + ("." + keep if keep else "")
    return base or "document"


def _storage_error(exc: OSError) -> DocumentError:
    # The reason goes to the log for the operator; the applicant gets a plain "try later".
    kind = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "I/O error"
    log.error("document storage failed (%s): %s", kind, exc.strerror or exc)
    return DocumentError(503, message("document_storage"))


def _copy_limited(source: BinaryIO, target: BinaryIO, limit: int) -> tuple[bytes, int, str]:
    """Copy at most limit + 1 bytes; returns the first bytes, the size and the SHA-256."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    while size <= limit:
        chunk = source.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        if len(head) < 16:
            head += chunk[: 16 - len(head)]
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return head, size, digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Discard:
    """A write-only sink for judging an upload without keeping it."""

    def write(self, data: bytes) -> int:
        return len(data)


def _rewindable(stream: BinaryIO) -> BinaryIO:
    """The stream itself when it can seek (Starlette spools uploads to a temporary file), else a
    temporary copy of it (spilled to disk past 1 MB): the database backend reads an upload twice."""
    try:
        if stream.seekable():
            stream.tell()
            return stream
    except (AttributeError, OSError):
        pass
    copy = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - returned to the caller
    while chunk := stream.read(CHUNK):
        copy.write(chunk)
    copy.seek(0)
    return cast(BinaryIO, copy)


def _check_for_database(settings: Settings, upload: Upload) -> StoredDocument:
    limit = settings.storage.max_document_bytes
    source = _rewindable(upload.stream)
    start = source.tell()
    head, size, sha256 = _copy_limited(source, _Discard(), limit)  # type: ignore[arg-type]
    content_type, extension = _accept(head, size, limit)
    source.seek(start)
    return StoredDocument(None, f"{secrets.token_hex(16)}{extension}", sanitize_filename(upload.filename),
                          content_type, size, sha256, source)


def store_upload(settings: Settings, upload: Upload | None) -> StoredDocument:
    """Check and store one upload; raises DocumentError and leaves no file when it is refused. With the
    database backend nothing is written yet: add_document_row writes it in the caller's transaction."""
    if upload is None:
        raise DocumentError(422, message("document"))
    if settings.document_backend == DocumentStore.DATABASE:
        return _check_for_database(settings, upload)
    limit = settings.storage.max_document_bytes
    folder = settings.documents_path
    token = secrets.token_hex(16)
    partial = folder / f".partial-{token}"
    final: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(partial, "xb") as target:
            head, size, sha256 = _copy_limited(upload.stream, target, limit)
            target.flush()
            os.fsync(target.fileno())
        content_type, extension = _accept(head, size, limit)
        final = folder / f"{token}{extension}"
        os.replace(partial, final)
        _fsync_dir(folder)
    except OSError as exc:
        if final is not None:
            final.unlink(missing_ok=True)
        raise _storage_error(exc) from exc
    finally:
        _remove_partial(partial)
    return StoredDocument(final, final.name, sanitize_filename(upload.filename), content_type, size, sha256)


def _remove_partial(partial: Path) -> None:
    # The folder itself may be unusable (e.g. a file): the caller has already reported a 503.
    with contextlib.suppress(OSError):
        partial.unlink(missing_ok=True)


def _accept(head: bytes, size: int, limit: int) -> tuple[str, str]:
    """(content type, extension) of an acceptable file; raises DocumentError otherwise."""
    if size > limit:
        raise DocumentError(413, message("document_too_large", size=document_limit_text(limit)))
    kind = sniff(head) if size else None
    if kind is None:
        raise DocumentError(422, message("document_type" if size else "document"))
    return kind


def discard(stored: StoredDocument) -> None:
    """Remove a stored file whose database rows did not commit (a document in the database went with
    the rollback: nothing to do)."""
    if stored.path is None:
        return
    try:
        stored.path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("could not remove orphaned document %s: %s", stored.stored_name, exc)


def add_document_row(session: Session, stored: StoredDocument) -> Document:
    """The document's row and, for the database backend, its bytes, in the session's transaction."""
    in_database = stored.source is not None
    document = Document(stored_name=stored.stored_name, original_name=stored.original_name,
                        content_type=stored.content_type, size=stored.size, sha256=stored.sha256,
                        stored_in=DocumentStore.DATABASE if in_database else DocumentStore.FILESYSTEM)
    session.add(document)
    if stored.source is not None:
        session.flush()
        size, sha256 = write_chunks(session, document.id, stored.source)
        if (size, sha256) != (stored.size, stored.sha256):
            # The upload changed between its check and its copy: store nothing of it.
            log.error("document %s changed while it was stored", stored.stored_name)
            raise DocumentError(503, message("document_storage"))
    return document


def write_chunks(session: Session, document_id: int, source: BinaryIO) -> tuple[int, str]:
    """Copy ``source`` into document_chunks, one DB_CHUNK row at a time; returns (size, SHA-256)."""
    digest = hashlib.sha256()
    size = 0
    seq = 0
    statement = insert(DocumentChunk)
    while True:
        piece = _read_full(source, DB_CHUNK)
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
        session.execute(statement, {"document_id": document_id, "seq": seq, "data": piece})
        seq += 1
    return size, digest.hexdigest()


def _read_full(source: BinaryIO, wanted: int) -> bytes:
    """Up to ``wanted`` bytes: a short read before the end of the stream is filled up, so every chunk
    but the last is exactly DB_CHUNK bytes."""
    piece = source.read(wanted)
    while piece and len(piece) < wanted:
        more = source.read(wanted - len(piece))
        if not more:
            break
        piece += more
    return piece


def read_chunks(db: Database, document_id: int, size: int) -> Iterator[bytes]:
    """A database-stored document's bytes, one chunk per short autocommit read: a slow download holds
    no connection between chunks. Stops with an error when a chunk is missing (the document was removed
    meanwhile), so the response ends short instead of passing off a truncated file as complete. Chunks
    are read by number until ``size`` bytes came, so a document written with another DB_CHUNK reads
    the same."""
    sent = 0
    seq = 0
    while sent < size:
        def read(connection: Connection, seq: int = seq) -> bytes | None:
            return connection.execute(select(DocumentChunk.data).where(
                DocumentChunk.document_id == document_id, DocumentChunk.seq == seq)).scalar()
        piece = db.read_once_more(read)
        if not piece:
            raise DocumentMissing(document_id)
        sent += len(piece)
        seq += 1
        yield bytes(piece)


class DocumentMissing(RuntimeError):
    """A document's bytes are not where its row says (removed meanwhile, or a file lost)."""
