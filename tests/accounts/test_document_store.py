"""Documents stored in the database (storage.backend = database), on SQLite and PostgreSQL: written in the
registration's transaction, served a chunk at a time with the document policy, surviving a restart,
moved from files by `mailflow documents migrate` (safe twice), removed by retention only where due."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mailflow.accounts import documents, registration, review
from mailflow.accounts.documents import DB_CHUNK, Upload
from mailflow.accounts.registration import RegistrationRefused, register_general
from mailflow.accounts.rules import is_valid_ubn
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import (
    Account,
    Application,
    AuditEvent,
    Document,
    DocumentChunk,
    DocumentStore,
    OutboxMessage,
)
from mailflow.ops import documents as stored_documents
from mailflow.ops import housekeeping
from mailflow.timeutil import now
from mailflow.web.app import create_app
from mailflow.web.review import DOCUMENT_CSP
from tests.web.test_register_api import FIELDS
from tests.web.test_review import add_staff, staff_login


def pdf_of(size: int, seed: int = 0) -> bytes:
    """A PDF-looking document of ``size`` bytes whose content differs per seed and per position."""
    head = b"%PDF-1.7\n"
    body = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    return head + body[: size - len(head)]


@functools.cache
def valid_ubns(count: int) -> list[str]:
    found: list[str] = []
    candidate = 10000000
    while len(found) < count:
        candidate += 1
        if is_valid_ubn(str(candidate)):
            found.append(str(candidate))
    return found


@pytest.fixture
def dbctx(ctx: AppContext) -> AppContext:
    ctx.settings = ctx.settings.updated(storage={"backend": "database"})
    return ctx


def register(ctx: AppContext, content: bytes, index: int = 0,
             name: str = "proof.pdf") -> int | RegistrationRefused:
    fields = {**FIELDS, "account": f"company{index:04d}", "ubn": valid_ubns(max(index + 1, 23))[index],
              "email": f"company{index}@example.com"}
    with ctx.db.session() as session:
        try:
            return register_general(session, ctx.settings, fields, Upload(name, io.BytesIO(content))).id
        except RegistrationRefused as refused:
            return refused


def chunk_rows(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(DocumentChunk)) or 0)


def table_count(ctx: AppContext, model: Any) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def viewer(ctx: AppContext) -> TestClient:
    add_staff(ctx)
    client = TestClient(create_app(ctx))
    client.__enter__()
    assert staff_login(client).status_code == 303
    return client


def files_in(settings: Settings) -> list[str]:
    folder = settings.documents_path
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_document_goes_into_the_database_in_chunks_and_comes_back_with_the_policy(
    dbctx: AppContext,
) -> None:
    content = pdf_of(2 * DB_CHUNK + 1234)
    application_id = register(dbctx, content)
    assert isinstance(application_id, int)
    with dbctx.db.session() as session:
        document = session.get(Application, application_id).document  # type: ignore[union-attr]
        assert document.stored_in == DocumentStore.DATABASE
        assert document.size == len(content) and document.sha256 == hashlib.sha256(content).hexdigest()
        assert len(document.stored_name) >= 32 and document.stored_name.endswith(".pdf")
        sizes = list(session.scalars(select(func.length(DocumentChunk.data)).where(
            DocumentChunk.document_id == document.id).order_by(DocumentChunk.seq)))
    assert sizes == [DB_CHUNK, DB_CHUNK, 1234]
    assert files_in(dbctx.settings) == []  # nothing on this host's disk
    client = viewer(dbctx)
    try:
        answer = client.get(f"/review/applications/{application_id}/document")
        assert answer.status_code == 200 and answer.content == content
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-length"] == str(len(content))
        assert answer.headers["content-security-policy"] == DOCUMENT_CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"].startswith("inline;")
        download = client.get(f"/review/applications/{application_id}/document?download=1")
        assert download.headers["content-disposition"].startswith("attachment;")
    finally:
        client.__exit__(None, None, None)


def test_the_content_check_and_the_size_limit_hold_and_store_nothing(dbctx: AppContext) -> None:
    dbctx.settings = dbctx.settings.updated(storage={"max_document_bytes": DB_CHUNK})
    refused = register(dbctx, b"MZ\x90\x00 not a pdf" * 100, name="proof.pdf")
    assert isinstance(refused, RegistrationRefused) and refused.status == 422 and "document" in refused.errors
    too_big = register(dbctx, pdf_of(DB_CHUNK + 1))
    assert isinstance(too_big, RegistrationRefused) and too_big.status == 413
    assert isinstance(register(dbctx, pdf_of(DB_CHUNK)), int)  # exactly the limit is fine
    assert (table_count(dbctx, Document), chunk_rows(dbctx)) == (1, 1)


def test_a_document_survives_a_restart(dbctx: AppContext) -> None:
    content = pdf_of(DB_CHUNK + 7, seed=3)
    application_id = register(dbctx, content)
    dbctx.db.dispose()
    # A new process on another host: a fresh context, an empty documents folder of its own.
    other_host = Path(dbctx.settings.storage.documents_dir).parent / "other-host"
    settings = dbctx.settings.updated(storage={"documents_dir": str(other_host)})
    again = AppContext.from_settings(settings)
    client = viewer(again)
    try:
        answer = client.get(f"/review/applications/{application_id}/document")
        assert answer.status_code == 200 and answer.content == content
    finally:
        client.__exit__(None, None, None)
        again.db.dispose()


def test_a_failed_transaction_leaves_no_document_row_and_no_bytes(
    dbctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_enqueue = registration.queue_registration_received

    def enqueue_then_fail(session: Session, *args: Any, **kwargs: Any) -> OutboxMessage:
        real_enqueue(session, *args, **kwargs)
        session.flush()  # the chunks, the document, the application and the mail reached the database ...
        assert session.scalar(select(func.count()).select_from(DocumentChunk)) == 3
        raise RuntimeError("crash before commit")  # ... and then the request died

    monkeypatch.setattr(registration, "queue_registration_received", enqueue_then_fail)
    with pytest.raises(RuntimeError):
        register(dbctx, pdf_of(2 * DB_CHUNK + 1))
    assert (table_count(dbctx, Document), chunk_rows(dbctx), table_count(dbctx, Application)) == (0, 0, 0)
    monkeypatch.setattr(registration, "queue_registration_received", real_enqueue)
    # The unique index refusing a second registration of one 帳號 (a race lost at commit) leaves nothing.
    assert isinstance(register(dbctx, pdf_of(100)), int)
    monkeypatch.setattr(registration, "taken_fields", lambda *args: {})
    lost = register(dbctx, pdf_of(3 * DB_CHUNK))
    assert isinstance(lost, RegistrationRefused) and lost.status == 409
    assert (table_count(dbctx, Document), chunk_rows(dbctx)) == (1, 1)


def test_twenty_concurrent_uploads_each_store_exactly_their_own_bytes(dbctx: AppContext) -> None:
    # 20 at once, every fourth over the limit: the accepted ones whole, the refused ones leave nothing.
    dbctx.settings = dbctx.settings.updated(storage={"max_document_bytes": 2 * DB_CHUNK})
    count = 22
    contents = {i: pdf_of(2 * DB_CHUNK + (1 if i % 4 == 3 else -i), seed=i) for i in range(count)}
    valid_ubns(23)  # computed outside the race
    results: dict[int, int | RegistrationRefused] = {}
    gate = threading.Barrier(count)

    def attempt(index: int) -> None:
        gate.wait()
        results[index] = register(dbctx, contents[index], index)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = {i for i, r in results.items() if isinstance(r, RegistrationRefused)}
    assert refused == {i for i in range(count) if i % 4 == 3}
    assert all(r.status == 413 for r in results.values() if isinstance(r, RegistrationRefused))
    with dbctx.db.session() as session:
        for index, result in results.items():
            if isinstance(result, int):
                document = session.get(Application, result).document  # type: ignore[union-attr]
                joined = b"".join(documents.read_chunks(dbctx.db, document.id, document.size))
                assert joined == contents[index]
    assert table_count(dbctx, Document) == count - len(refused)


def file_registrations(ctx: AppContext, count: int) -> dict[int, bytes]:
    ctx.settings = ctx.settings.updated(storage={"backend": "filesystem"})
    stored = {}
    for index in range(count):
        content = pdf_of(DB_CHUNK + 100 * index, seed=index)
        application_id = register(ctx, content, index)
        assert isinstance(application_id, int)
        stored[application_id] = content
    ctx.settings = ctx.settings.updated(storage={"backend": "database"})
    return stored


def served(ctx: AppContext, application_id: int) -> bytes:
    with ctx.db.session() as session:
        document = session.get(Application, application_id).document  # type: ignore[union-attr]
        assert document.stored_in == DocumentStore.DATABASE
        return b"".join(documents.read_chunks(ctx.db, document.id, document.size))


def test_migrate_moves_the_files_and_is_safe_to_run_twice(ctx: AppContext) -> None:
    stored = file_registrations(ctx, 4)
    assert len(files_in(ctx.settings)) == 4
    first = stored_documents.migrate_to_database(ctx)
    assert (first.total, first.moved, first.missing, first.mismatched) == (4, 4, 0, 0)
    assert files_in(ctx.settings) == []
    assert all(served(ctx, application_id) == content for application_id, content in stored.items())
    chunks = chunk_rows(ctx)
    second = stored_documents.migrate_to_database(ctx)
    assert (second.total, second.moved, second.leftovers_removed) == (0, 0, 0)
    assert chunk_rows(ctx) == chunks
    assert all(served(ctx, application_id) == content for application_id, content in stored.items())


def test_migrate_keeps_what_it_cannot_vouch_for_and_finishes_a_crashed_run(ctx: AppContext) -> None:
    stored = file_registrations(ctx, 3)
    missing, changed, crashed = sorted(stored)
    with ctx.db.session() as session:
        names = {a.id: a.document.stored_name for a in session.scalars(select(Application))}
    (ctx.settings.documents_path / names[missing]).unlink()
    (ctx.settings.documents_path / names[changed]).write_bytes(b"%PDF-1.7 tampered")
    # An earlier run committed this one and died before removing the file.
    with ctx.db.session() as session:
        document = session.get(Application, crashed).document  # type: ignore[union-attr]
        with open(ctx.settings.documents_path / names[crashed], "rb") as source:
            documents.write_chunks(session, document.id, source)
        document.stored_in = DocumentStore.DATABASE
    report = stored_documents.migrate_to_database(ctx)
    assert (report.total, report.moved, report.missing, report.mismatched, report.leftovers_removed) == \
        (2, 0, 1, 1, 1)
    assert files_in(ctx.settings) == [names[changed]]  # kept for the operator to look at
    assert served(ctx, crashed) == stored[crashed]
    with ctx.db.session() as session:
        kinds = {a.id: a.document.stored_in for a in session.scalars(select(Application))}
    assert kinds == {missing: "filesystem", changed: "filesystem", crashed: "database"}
    assert chunk_rows(ctx) == 2  # the tampered copy was rolled back


def test_the_migrate_command_prints_its_summary(ctx: AppContext) -> None:
    file_registrations(ctx, 2)
    env = {**os.environ, "MAILFLOW_DATABASE__URL": ctx.settings.database.url,
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": ctx.settings.storage.documents_dir,
           "MAILFLOW_STORAGE__BACKEND": "database"}
    command = [sys.executable, "-m", "mailflow", "documents", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "共 2 份檔案文件:已移入資料庫 2"
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (second.returncode, second.stdout.strip()) == (0, "共 0 份檔案文件:已移入資料庫 0")
    assert files_in(ctx.settings) == []


def decide(ctx: AppContext, application_id: int, status: str, days_ago: float) -> None:
    with ctx.db.session() as session:
        if status == "rejected":
            review.reject(session, ctx.settings, application_id, "staff:lin", ["公司證明文件不清楚"])
        elif status == "approved":
            review.approve(session, ctx.settings, application_id, "staff:lin")
        session.execute(update(Application).where(Application.id == application_id)
                        .values(decided_at=now() - timedelta(days=days_ago)))


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_retention_removes_only_documents_of_applications_rejected_long_enough_ago(
    ctx: AppContext, backend: str
) -> None:
    ctx.settings = ctx.settings.updated(storage={"backend": backend})
    ids = [register(ctx, pdf_of(DB_CHUNK + i, seed=i), i) for i in range(5)]
    assert all(isinstance(i, int) for i in ids)
    old_reject, new_reject, old_approve, pending, edge = (int(i) for i in ids)  # type: ignore[arg-type]
    decide(ctx, old_reject, "rejected", 181)
    decide(ctx, new_reject, "rejected", 179)
    decide(ctx, old_approve, "approved", 400)
    decide(ctx, edge, "rejected", 180.01)
    with ctx.db.session() as session:
        names = {a.id: a.document.stored_name for a in session.scalars(select(Application))}
    report = housekeeping.run(ctx)
    assert report.documents_purged == 2
    with ctx.db.session() as session:
        purged = {a.id for a in session.scalars(select(Application)) if a.document.purged_at is not None}
        kept_chunks = set(session.scalars(select(DocumentChunk.document_id).distinct()))
        audits = session.execute(select(AuditEvent.target_id, AuditEvent.actor, AuditEvent.details)
                                 .where(AuditEvent.action == "document.purged")).all()
        document_ids = {a.id: a.document_id for a in session.scalars(select(Application))}
    assert purged == {old_reject, edge}
    assert sorted(a[0] for a in audits) == sorted([old_reject, edge])
    assert all(actor == "system" and details["retention_days"] == 180 for _, actor, details in audits)
    if backend == "database":
        assert kept_chunks == {document_ids[i] for i in (new_reject, old_approve, pending)}
    else:
        assert files_in(ctx.settings) == sorted(names[i] for i in (new_reject, old_approve, pending))
    assert housekeeping.run(ctx).documents_purged == 0  # a second run finds nothing more
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "document.purged")) == 2
        assert session.scalar(select(func.count()).select_from(Account)) == 5  # only the documents go
    client = viewer(ctx)
    try:
        gone = client.get(f"/review/applications/{old_reject}/document")
        assert gone.status_code == 404 and "已依個人資料保護法刪除" in gone.text
        page = client.get(f"/review/applications/{old_reject}")
        assert "已依個人資料保護法刪除" in page.text and "刪除逾期證明文件" in page.text
        assert client.get(f"/review/applications/{new_reject}/document").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_the_backend_defaults_to_the_database_on_postgresql_only() -> None:
    from mailflow.config import ConfigError, load_settings

    assert load_settings(None, {}).document_backend == "filesystem"
    on_pg = load_settings(None, {"MAILFLOW_DATABASE__URL": "postgresql+psycopg://u@h/db"})
    assert on_pg.document_backend == "database"
    forced = load_settings(None, {"MAILFLOW_DATABASE__URL": "postgresql+psycopg://u@h/db",
                                  "MAILFLOW_STORAGE__BACKEND": "filesystem"})
    assert forced.document_backend == "filesystem"
    with pytest.raises(ConfigError, match="storage.backend"):
        load_settings(None, {"MAILFLOW_STORAGE__BACKEND": "s3"})
    with pytest.raises(ConfigError, match="storage.retention_days"):
        load_settings(None, {"MAILFLOW_STORAGE__RETENTION_DAYS": "0"})


def test_the_migration_history_has_one_head() -> None:
    from alembic.script import ScriptDirectory

    from mailflow.db import alembic_config

    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_concurrent_migrate_runs_move_each_document_once(ctx: AppContext) -> None:
    stored = file_registrations(ctx, 6)
    reports: list[stored_documents.MigrateReport] = []
    gate = threading.Barrier(20)

    def run() -> None:
        gate.wait()
        reports.append(stored_documents.migrate_to_database(ctx))

    threads = [threading.Thread(target=run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 20  # no run failed
    assert sum(r.moved for r in reports) == 6 and all(r.mismatched == r.missing == 0 for r in reports)
    assert files_in(ctx.settings) == []
    assert chunk_rows(ctx) == sum(-(-len(content) // DB_CHUNK) for content in stored.values())
    assert all(served(ctx, application_id) == content for application_id, content in stored.items())


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_retention_runs_at_the_same_time_remove_each_document_once(ctx: AppContext, backend: str) -> None:
    ctx.settings = ctx.settings.updated(storage={"backend": backend})
    ids = [register(ctx, pdf_of(DB_CHUNK + i, seed=i), i) for i in range(5)]
    for application_id in ids:
        decide(ctx, int(application_id), "rejected", 200)  # type: ignore[arg-type]
    results: list[int] = []
    gate = threading.Barrier(20)

    def run() -> None:
        gate.wait()
        results.append(stored_documents.purge_rejected(ctx, batch=2))

    threads = [threading.Thread(target=run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20 and sum(results) == 5  # every run finished; each document once
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "document.purged")) == 5
    assert chunk_rows(ctx) == 0 and files_in(ctx.settings) == []


def test_the_banner_says_where_documents_go(dbctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    from mailflow.daemon import _banner

    _banner(dbctx, "web", [])
    shown = capsys.readouterr().err
    assert "documents           in the database (storage.backend = database)" in shown
    assert "documents folder" not in shown


def test_a_missing_chunk_ends_the_read_with_an_error_not_a_short_file(dbctx: AppContext) -> None:
    application_id = register(dbctx, pdf_of(2 * DB_CHUNK + 5))
    with dbctx.db.session() as session:
        document = session.get(Application, application_id).document  # type: ignore[union-attr]
        session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id,
                                                    DocumentChunk.seq == 1))
    pieces = documents.read_chunks(dbctx.db, document.id, document.size)
    assert len(next(pieces)) == DB_CHUNK
    with pytest.raises(documents.DocumentMissing):
        next(pieces)
