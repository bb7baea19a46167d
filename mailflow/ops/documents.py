"""Stored documents over time: moving files into the database (`mailflow documents migrate`) and the
retention of rejected applications' documents (housekeeping).

Migrate, one document per transaction: the file is streamed into document_chunks, its size and SHA-256
checked against the row, the row switched to ``stored_in = database``; only after that commit is the
file removed. A crash at any point leaves either the file (the row still says filesystem: the next run
copies it again) or the committed copy plus a file the next run removes. Running it twice is harmless.

Retention: a rejected application's document is removed ``storage.retention_days`` after the decision
(個人資料保護法: kept no longer than needed). Its chunks (or file) go; the row stays with ``purged_at``
and an audit event ``document.purged`` on the application, so the review trail says what went when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts.documents import write_chunks
from mailflow.context import AppContext
from mailflow.models import Application, ApplicationStatus, Document, DocumentChunk, DocumentStore
from mailflow.timeutil import now

log = logging.getLogger(__name__)

BATCH = 100


@dataclass
class MigrateReport:
    total: int = 0  # documents stored as files when the run started
    moved: int = 0
    missing: int = 0  # the row's file is not in storage.documents_dir
    mismatched: int = 0  # the file's size or SHA-256 is not the row's: left as it is
    leftovers_removed: int = 0  # files of documents already in the database (an earlier run's crash)


def _file_of(ctx: AppContext, document: Document) -> Path:
    return ctx.settings.documents_path / document.stored_name


def migrate_to_database(ctx: AppContext, advance: Callable[[], None] = lambda: None,
                        total: Callable[[int], None] = lambda n: None) -> MigrateReport:
    """Move every file-stored document into the database; ``total(n)`` is told how many there are and
    ``advance()`` is called after each (for a progress bar)."""
    report = MigrateReport()
    with ctx.db.session() as session:
        ids = list(session.scalars(select(Document.id).order_by(Document.id).where(
            Document.stored_in == DocumentStore.FILESYSTEM, Document.purged_at.is_(None))))
        in_database = list(session.scalars(select(Document.stored_name).where(
            Document.stored_in == DocumentStore.DATABASE)))
    report.total = len(ids)
    total(len(ids))
    for document_id in ids:
        _move_one(ctx, document_id, report)
        advance()
    for name in in_database:
        try:
            (ctx.settings.documents_path / name).unlink()
        except FileNotFoundError:
            continue  # the usual case; or another run at the same time removed it first
        report.leftovers_removed += 1
    log.info("documents migrate: %d moved, %d missing, %d mismatched, %d leftover files removed",
             report.moved, report.missing, report.mismatched, report.leftovers_removed)
    return report


def _move_one(ctx: AppContext, document_id: int, report: MigrateReport) -> None:
    with ctx.db.session() as session:
        # A write first, so that runs at the same time take each document in turn and see the other's
        # commit: PostgreSQL locks the row (a second run waits, then matches nothing), SQLite takes its
        # write lock before this transaction has read anything.
        claimed = session.execute(update(Document).where(
            Document.id == document_id, Document.stored_in == DocumentStore.FILESYSTEM,
        ).values(stored_in=DocumentStore.FILESYSTEM))
        if claimed.rowcount == 0:  # type: ignore[attr-defined]
            return  # moved by another run meanwhile
        document = session.scalars(select(Document).where(Document.id == document_id)).one()
        path = _file_of(ctx, document)
        if not path.is_file():
            log.warning("documents migrate: %s (document %d) has no file in %s", document.stored_name,
                        document.id, ctx.settings.documents_path)
            report.missing += 1
            return
        session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
        with open(path, "rb") as source:
            size, sha256 = write_chunks(session, document.id, source)
        if (size, sha256) != (document.size, document.sha256):
            session.rollback()
            log.error("documents migrate: %s (document %d) differs from its row (size %d, expected %d): "
                      "left as a file", document.stored_name, document_id, size, document.size)
            report.mismatched += 1
            return
        document.stored_in = DocumentStore.DATABASE
    # Committed: the copy in the database is the document now.
    path.unlink(missing_ok=True)
    report.moved += 1


def purge_rejected(ctx: AppContext, days: int | None = None, batch: int = BATCH) -> int:
    """Remove the documents of applications rejected more than ``days`` (storage.retention_days) ago;
    returns how many. One transaction per batch; files are unlinked after their batch commits."""
    days = ctx.settings.storage.retention_days if days is None else days
    cutoff = now() - timedelta(days=days)
    purged = 0
    while True:
        files: list[Path] = []
        with ctx.db.session() as session:
            claimed = _claim_batch(session, cutoff, batch)
            rows = session.execute(
                select(Application.id, Application.decided_at, Document)
                .join(Document, Document.id == Application.document_id)
                .where(Document.id.in_(claimed)).order_by(Application.id)
            ).all() if claimed else []
            for application_id, decided_at, document in rows:
                _record_purge(session, application_id, decided_at, document, days)
                if document.stored_in == DocumentStore.FILESYSTEM:
                    files.append(_file_of(ctx, document))
        purged += len(rows)
        for path in files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("retention: could not remove document file %s: %s", path.name, exc)
        if len(claimed) < batch:
            break
    if purged:
        log.info("retention: %d documents of rejected applications removed (older than %d days)",
                 purged, days)
    return purged


def _claim_batch(session: Session, cutoff: datetime, batch: int) -> list[int]:
    """Mark up to ``batch`` due documents purged and return their ids. The guarded UPDATE is the
    transaction's first statement: on PostgreSQL a second run at the same time waits for these rows and
    then finds them purged; SQLite gives it the write lock only after this commits."""
    due = (select(Application.document_id).join(Document, Document.id == Application.document_id)
           .where(Application.status == ApplicationStatus.REJECTED, Application.decided_at < cutoff,
                  Document.purged_at.is_(None))
           .order_by(Application.id).limit(batch))
    marked = session.execute(update(Document).where(Document.id.in_(due), Document.purged_at.is_(None))
                             .values(purged_at=now()).returning(Document.id))
    return [int(i) for i in marked.scalars()]


def _record_purge(session: Session, application_id: int, decided_at: datetime | None, document: Document,
                  days: int) -> None:
    session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
    audit.record(session, "system", "document.purged", "application", application_id,
                 document=document.stored_name, sha256=document.sha256, size=document.size,
                 stored_in=document.stored_in, rejected_at=decided_at.isoformat() if decided_at else None,
                 retention_days=days)
