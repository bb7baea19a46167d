"""Rejecting from both reviewer consoles: `mailflow review reject` and /review go through the same
function, and both queue document-rejected beside account-rejected when a reason concerns the company
document (the function's own cases are in tests/accounts/test_review_reject.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import review
from mailflow.cli import main
from mailflow.context import AppContext
from mailflow.models import OutboxMessage
from tests.factories import add_staff, add_submitted, csrf_of, staff_login


def mails(ctx: AppContext) -> list[tuple[str, str, list[str]]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(m.template, m.to_address, list(m.context["reasons"])) for m in rows]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", db_url)
    monkeypatch.setenv("MAILFLOW_STORAGE__DOCUMENTS_DIR", str(tmp_path / "documents"))


def test_cli_reject_with_a_document_code_queues_both_mails(
    ctx: AppContext, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    application_id = add_submitted(ctx)
    code = main(["review", "reject", str(application_id), "--code", "brc-obsolete",
                 "--reason", "公司地址請填寫完整門牌"])
    assert code == 0
    assert capsys.readouterr().out == f"application {application_id} rejected; the result mails are queued\n"
    brc = review.STANDARD_REASONS["brc-obsolete"]
    to = "example1234@example.com"
    assert mails(ctx) == [("account-rejected", to, [brc, "公司地址請填寫完整門牌"]),
                          ("document-rejected", to, [brc])]


def test_cli_reject_with_free_text_only_queues_account_rejected(
    ctx: AppContext, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    application_id = add_submitted(ctx)
    assert main(["review", "reject", str(application_id), "--reason", "請改填自然人姓名"]) == 0
    assert "rejectd" not in capsys.readouterr().out
    assert [m[0] for m in mails(ctx)] == ["account-rejected"]


def test_cli_approve_still_says_approved(ctx: AppContext, cli_env: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    application_id = add_submitted(ctx)
    assert main(["review", "approve", str(application_id)]) == 0
    assert capsys.readouterr().out == f"application {application_id} approved; the result mails are queued\n"


def test_console_reject_queues_document_rejected_and_says_so(ctx: AppContext, client: TestClient) -> None:
    application_id = add_submitted(ctx)
    other = add_submitted(ctx, "example5678", "12345675")
    add_staff(ctx)
    staff_login(client)
    path = f"/review/applications/{application_id}"
    answer = client.post(f"{path}/reject", data={
        "codes": ["person-name", "doc-unreadable"], "other": "", "csrf_token": csrf_of(client, path)})
    assert answer.status_code == 200  # the redirect to the application page, followed
    assert "公司文件審核未通過通知信" in answer.text
    unreadable = review.STANDARD_REASONS["doc-unreadable"]
    person = review.STANDARD_REASONS["person-name"]
    to = "example1234@example.com"
    assert mails(ctx) == [("account-rejected", to, [person, unreadable]),
                          ("document-rejected", to, [unreadable])]

    path = f"/review/applications/{other}"
    answer = client.post(f"{path}/reject", data={
        "codes": ["person-name"], "other": "", "csrf_token": csrf_of(client, path)})
    assert answer.status_code == 200 and "公司文件審核未通過通知信" not in answer.text
    assert [m[0] for m in mails(ctx)][2:] == ["account-rejected"]
