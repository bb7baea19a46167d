"""POST /api/applications against the real app and database: what is stored, what is refused, and that a
refused request leaves nothing behind (rows and files)."""

from __future__ import annotations

import errno
import hashlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailflow.accounts import documents, registration
from mailflow.accounts.documents import Upload
from mailflow.accounts.registration import RegistrationRefused, register_general
from mailflow.context import AppContext
from mailflow.models import (
    Account,
    AccountStatus,
    Application,
    ApplicationStatus,
    AuditEvent,
    Document,
    OutboxMessage,
)
from mailflow.passwords import verify_password

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
FIELDS = {
    "account": "example1234", "name": "王小明", "mobile": "0912-345-678", "email": "Example@Gmail.com",
    "password": "Harbour2024", "password_confirm": "Harbour2024", "ubn": "04595257",
    "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文",
}
UBN_TAKEN = "此統一編號已有帳號,每個統一編號只能申請一個一般帳號"
TABLES = (Account, Application, Document, OutboxMessage, AuditEvent)


def post(client: Any, document: tuple[str, bytes, str] | None = ("proof.pdf", PDF, "application/pdf"),
         **changes: str) -> Any:
    files = {"document": document} if document else None
    return client.post("/api/applications", data={**FIELDS, **changes}, files=files)


def counts(ctx: AppContext) -> dict[str, int]:
    with ctx.db.session() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def stored_files(ctx: AppContext) -> list[Path]:
    folder = ctx.settings.documents_path
    return sorted(folder.iterdir()) if folder.exists() else []


def nothing_stored(ctx: AppContext) -> bool:
    return all(n == 0 for n in counts(ctx).values()) and stored_files(ctx) == []


def test_a_registration_is_stored_with_its_document_and_queued_mail(client: Any, ctx: AppContext) -> None:
    response = post(client)
    assert response.status_code == 201
    body = response.json()
    assert body["account"] == "example1234" and body["status"] == "submitted"
    with ctx.db.session() as session:
        application = session.get(Application, body["id"])
        assert application is not None
        account = application.account
        assert (account.kind, account.status) == ("general", AccountStatus.PENDING)
        assert account.account_key == "example1234"
        assert account.mobile == "0912345678"
        assert account.email == "Example@gmail.com" and account.email_key == "example@gmail.com"
        assert account.password_hash.startswith("$argon2id$") and "Harbour2024" not in account.password_hash
        assert verify_password(account.password_hash, "Harbour2024")
        assert application.status == "submitted"
        assert application.ubn == application.ubn_key == "04595257"
        document = application.document
        assert (document.original_name, document.content_type) == ("proof.pdf", "application/pdf")
        assert document.size == len(PDF)
        assert document.sha256 == hashlib.sha256(PDF).hexdigest()
        mail = session.scalars(select(OutboxMessage)).one()
        assert (mail.template, mail.to_address, mail.application_id) == ("registration-received",
                                                                         "Example@gmail.com", application.id)
        assert set(mail.context) >= {"name", "account", "company_name", "ubn", "submitted_at"}
        assert mail.context["ubn"] == "04595257" and mail.context["account"] == "example1234"
        audit = session.scalars(select(AuditEvent)).one()
        assert (audit.action, audit.target_id) == ("application.submitted", application.id)
    files = stored_files(ctx)
    assert [f.name for f in files] == [document.stored_name]
    assert document.stored_name != "proof.pdf" and len(document.stored_name) >= 32
    assert files[0].read_bytes() == PDF


@pytest.mark.parametrize(("name", "content", "kind"), [
    ("scan.png", PNG, "image/png"), ("photo.jpeg", JPEG, "image/jpeg"),
    ("no-extension", PDF, "application/pdf"),
])
def test_the_document_type_comes_from_its_content(client: Any, ctx: AppContext, name: str, content: bytes,
                                                  kind: str) -> None:
    assert post(client, document=(name, content, "application/octet-stream")).status_code == 201
    with ctx.db.session() as session:
        assert session.scalars(select(Document.content_type)).one() == kind


def test_a_text_file_named_pdf_is_refused(client: Any, ctx: AppContext) -> None:
    response = post(client, document=("proof.pdf", b"just some text, not a PDF", "application/pdf"))
    assert response.status_code == 422
    assert response.json() == {"errors": {"document": "公司證明文件須為PDF、JPEG或PNG檔(依檔案內容判斷)"}}
    assert nothing_stored(ctx)


def test_every_bad_field_and_the_missing_document_at_once(client: Any, ctx: AppContext) -> None:
    bad = {"account": "1x", "name": "ACME Ltd", "mobile": "123", "email": "nope", "password": "weak",
           "password_confirm": "other", "ubn": "12345678", "company_phone": "12345", "company_name": "x",
           "company_address": "somewhere", "company_owner": "王1"}
    response = post(client, document=None, **bad)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == set(FIELDS) | {"document"}
    assert response.json()["errors"]["document"] == "請上傳一個公司證明文件(PDF、JPEG或PNG檔)"
    assert nothing_stored(ctx)


def test_a_good_document_with_bad_fields_is_not_kept(client: Any, ctx: AppContext) -> None:
    response = post(client, name="王小明\r\nBcc: victim@example.com")
    assert response.status_code == 422
    assert response.json() == {"errors": {"name": "姓名不可包含換行或控制字元"}}
    assert nothing_stored(ctx)


@pytest.mark.parametrize(("field", "value"), [
    ("email", "a@b.com\r\nBcc: x@example.com"), ("company_name", "港務\n公司"), ("account", "abc\x00de"),
    ("company_owner", "王\u202e明"),
])
def test_hostile_characters_are_refused_and_nothing_is_stored(client: Any, ctx: AppContext, field: str,
                                                              value: str) -> None:
    response = client.post("/api/applications", data={**FIELDS, field: value},
                           files={"document": ("proof.pdf", PDF, "application/pdf")})
    assert response.status_code == 422
    assert "換行或控制字元" in response.json()["errors"][field]
    assert nothing_stored(ctx)


def test_over_long_fields_are_refused_not_crashed(client: Any, ctx: AppContext) -> None:
    response = post(client, company_name="港" * 10_000, email="a" * 5_000 + "@example.com")
    assert response.status_code == 422
    assert response.json()["errors"] == {"company_name": "公司名稱不可超過100個字元",
                                         "email": "Email不可超過254個字元"}
    assert nothing_stored(ctx)


def test_a_document_over_the_limit_is_413_and_at_the_limit_is_accepted(client: Any, ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(storage={"max_document_bytes": 2048})
    over = PDF + b"x" * (2049 - len(PDF))
    response = post(client, document=("big.pdf", over, "application/pdf"))
    assert response.status_code == 413
    assert response.json() == {"errors": {"document": "公司證明文件不可超過2 KB"}}
    assert nothing_stored(ctx)
    exact = PDF + b"x" * (2048 - len(PDF))
    assert post(client, document=("ok.pdf", exact, "application/pdf")).status_code == 201


def test_a_body_far_over_the_limit_is_413_before_it_is_read(client: Any, ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(storage={"max_document_bytes": 1024 * 1024})
    huge = PDF + b"x" * (3 * 1024 * 1024)
    response = post(client, document=("huge.pdf", huge, "application/pdf"))
    assert response.status_code == 413
    assert response.json() == {"errors": {"document": "公司證明文件不可超過1 MB"}}
    assert nothing_stored(ctx)


def test_several_documents_are_refused(client: Any, ctx: AppContext) -> None:
    files = [("document", (name, PDF, "application/pdf")) for name in ("p1.pdf", "p2.pdf")]
    response = client.post("/api/applications", data=FIELDS, files=files)
    assert response.status_code == 422
    assert response.json()["errors"] == {"document": "公司證明文件只能上傳一個檔案,多頁文件請合併成一個檔案"}
    assert nothing_stored(ctx)


def test_a_body_that_is_not_a_form_is_refused_by_its_type(client: Any, ctx: AppContext) -> None:
    response = client.post("/api/applications", json=FIELDS)
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]
    broken = client.post("/api/applications", content=b"--x\r\ngarbage",
                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert broken.status_code in (400, 422)
    assert "errors" in broken.json()
    assert nothing_stored(ctx)


def test_the_original_file_name_is_sanitised(client: Any, ctx: AppContext) -> None:
    assert post(client, document=("..\\..\\C:\\evil<b>.pdf", PDF, "application/pdf")).status_code == 201
    with ctx.db.session() as session:
        document = session.scalars(select(Document)).one()
    assert document.original_name == "evil<b>.pdf"
    assert "/" not in document.stored_name and document.stored_name.endswith(".pdf")


def test_a_taken_account_id_is_409_case_insensitively(client: Any, ctx: AppContext) -> None:
    assert post(client).status_code == 201
    before = counts(ctx), stored_files(ctx)
    response = post(client, account="EXAMPLE1234", ubn="10000308")
    assert response.status_code == 409
    assert response.json() == {"errors": {"account": "帳號已經存在"}}
    assert (counts(ctx), stored_files(ctx)) == before


def test_a_ubn_with_a_live_general_account_is_409(client: Any, ctx: AppContext) -> None:
    assert post(client).status_code == 201
    before = counts(ctx), stored_files(ctx)
    response = post(client, account="another99")
    assert response.status_code == 409
    assert response.json() == {"errors": {"ubn": UBN_TAKEN}}
    assert (counts(ctx), stored_files(ctx)) == before


def test_a_rejected_application_frees_its_account_id_and_ubn(client: Any, ctx: AppContext) -> None:
    first = post(client).json()
    with ctx.db.session() as session:  # what a rejection does to the keys
        session.execute(update(Application).where(Application.id == first["id"])
                        .values(status=ApplicationStatus.REJECTED, ubn_key=None))
        session.execute(update(Account).values(status=AccountStatus.REJECTED, account_key=None))
    again = post(client, account="Example1234")
    assert again.status_code == 201
    assert again.json()["id"] != first["id"]


def _register(ctx: AppContext, **changes: str) -> RegistrationRefused | int:
    with ctx.db.session() as session:
        try:
            return register_general(session, ctx.settings, {**FIELDS, **changes},
                                    Upload("proof.pdf", io.BytesIO(PDF))).id
        except RegistrationRefused as refused:
            return refused


def test_the_unique_index_answers_a_race_the_check_missed(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(_register(ctx), int)
    # The window between the check and the insert: the check sees nothing, the unique index still holds.
    monkeypatch.setattr(registration, "taken_fields", lambda *args: {})
    refused = _register(ctx, account="EXAMPLE1234", ubn="10000308")
    assert isinstance(refused, RegistrationRefused)
    assert (refused.status, refused.errors) == (409, {"account": "帳號已經存在"})
    refused = _register(ctx, account="other1234")
    assert isinstance(refused, RegistrationRefused)
    assert (refused.status, refused.errors) == (409, {"ubn": UBN_TAKEN})
    assert counts(ctx)["accounts"] == 1 and len(stored_files(ctx)) == 1


def test_concurrent_submissions_of_one_account_store_exactly_one(ctx: AppContext) -> None:
    results: list[RegistrationRefused | int] = []
    gate = threading.Barrier(4)

    def attempt(index: int) -> None:
        gate.wait()
        results.append(_register(ctx, ubn=["04595257", "10000308", "10000399", "12345675"][index]))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(r.status == 409 for r in results if isinstance(r, RegistrationRefused))
    assert counts(ctx)["accounts"] == 1 and len(stored_files(ctx)) == 1


def test_the_application_and_its_mail_commit_together_or_not_at_all(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_enqueue = registration.queue_registration_received

    def enqueue_then_fail(session: Session, *args: Any, **kwargs: Any) -> OutboxMessage:
        real_enqueue(session, *args, **kwargs)
        session.flush()  # the outbox row and the application reached the database ...
        raise RuntimeError("crash before commit")  # ... and then the request died

    monkeypatch.setattr(registration, "queue_registration_received", enqueue_then_fail)
    with pytest.raises(RuntimeError):
        _register(ctx)
    assert nothing_stored(ctx)
    monkeypatch.setattr(registration, "queue_registration_received", real_enqueue)
    application_id = _register(ctx)
    assert isinstance(application_id, int)
    with ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage)).one()
        assert mail.application_id == application_id and mail.template == "registration-received"


@pytest.mark.parametrize("where", ["_copy_limited", "_fsync_dir"])
def test_a_full_disk_is_a_clear_503_and_nothing_half_stored(
    client: Any, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    real = getattr(documents, where)

    def disk_full(*args: Any) -> Any:
        real(*args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(documents, where, disk_full)
    response = post(client)
    assert response.status_code == 503
    assert response.json()["errors"]["document"] == "伺服器暫時無法儲存文件,請稍後再試"
    assert nothing_stored(ctx)
