"""Company proof documents (公司證明文件): accept one upload, judge it by its content, store it safely.

The upload is streamed to a hidden temporary file under storage.documents_dir while it is hashed and
measured; reading stops one byte past the size limit. Only a complete, accepted file is fsynced and
renamed to its random final name, so a refused or failed upload never leaves a file behind; the caller
removes the stored file again (``discard``) when its database transaction does not commit.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from mailflow.accounts.rules import document_limit_text, has_control_characters, message
from mailflow.config import Settings
from mailflow.models import Document
from mailflow.refusals import Refused

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
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
    path: Path
    stored_name: str
    original_name: str
    content_type: str
    size: int
    sha256: str


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


def store_upload(settings: Settings, upload: Upload | None) -> StoredDocument:
    """Check and store one upload; raises DocumentError and leaves no file when it is refused."""
    if upload is None:
        raise DocumentError(422, message("document"))
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
    """Remove a stored file whose database rows did not commit."""
    try:
        stored.path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("could not remove orphaned document %s: %s", stored.stored_name, exc)


def add_document_row(session: Session, stored: StoredDocument) -> Document:
    document = Document(stored_name=stored.stored_name, original_name=stored.original_name,
                        content_type=stored.content_type, size=stored.size, sha256=stored.sha256)
    session.add(document)
    return document
