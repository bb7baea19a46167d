"""`mailflow outbox list|retry` and `mailflow preview`, run as the operator runs them."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mailflow.context import AppContext
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import OutboxStatus
from tests.cli_runner import Result, run_cli
from tests.mail.helpers import ScriptedSink, outbox_row, queue_mail


@pytest.fixture
def mailflow(db_url: str, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """The real command line (argument parsing, settings from the environment), run in this process."""
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", db_url)

    return lambda *args: run_cli(capsys, *args)


def test_list_and_retry(relay_ctx: AppContext, sink: ScriptedSink, mailflow: Callable[..., Result]) -> None:
    sink.rcpt_replies["bad@example.com"] = "550 5.1.1 unknown"
    good = queue_mail(relay_ctx, "good@example.com")
    bad = queue_mail(relay_ctx, "bad@example.com")
    run_dispatch(relay_ctx, threading.Event())

    listed = json.loads(mailflow("outbox", "list", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(bad, "failed"), (good, "sent")]
    assert listed[0]["last_reply"] == "550 5.1.1 unknown"
    failed = json.loads(mailflow("outbox", "list", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in failed] == [bad]
    table = mailflow("outbox", "list")
    assert table.returncode == 0 and "bad@example.com" in table.stdout

    done = mailflow("outbox", "retry", str(bad))
    assert done.returncode == 0, done.stderr
    assert outbox_row(relay_ctx, bad).status == OutboxStatus.QUEUED
    sink.rcpt_replies.clear()
    run_dispatch(relay_ctx, threading.Event())
    assert outbox_row(relay_ctx, bad).status == OutboxStatus.SENT

    refused = mailflow("outbox", "retry", str(good))
    assert refused.returncode == 1 and "is sent" in refused.stderr
    missing = mailflow("outbox", "retry", "99999")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert mailflow("outbox", "list", "--status", "bogus").returncode == 2


def test_retry_of_a_failed_verification_mail_gives_it_a_fresh_link(
    relay_ctx: AppContext, sink: ScriptedSink, mailflow: Callable[..., Result]
) -> None:
    from mailflow.accounts.verification import send_verification_mail
    from tests.factories import make_applicant

    with relay_ctx.db.session() as session:
        account, _ = make_applicant(session, email="v@example.com")
        outbox_id = send_verification_mail(session, relay_ctx.settings, account, "account-approved").id
    sink.rcpt_replies["v@example.com"] = "550 5.1.1 unknown"
    run_dispatch(relay_ctx, threading.Event())
    assert "verify_url" not in outbox_row(relay_ctx, outbox_id).context
    result = mailflow("outbox", "retry", str(outbox_id))
    assert result.returncode == 0 and "with a fresh one-time link (the old one is void)" in result.stdout
    row = outbox_row(relay_ctx, outbox_id)
    assert row.status == OutboxStatus.QUEUED and "/verify/" in row.context["verify_url"]


def test_a_verification_mail_without_an_account_cannot_get_a_fresh_link(
    relay_ctx: AppContext, sink: ScriptedSink, mailflow: Callable[..., Result]
) -> None:
    sink.rcpt_replies["v@example.com"] = "550 5.1.1 unknown"
    outbox_id = queue_mail(relay_ctx, "v@example.com", template="account-approved")
    run_dispatch(relay_ctx, threading.Event())
    result = mailflow("outbox", "retry", str(outbox_id))
    assert result.returncode == 1 and "cannot get a fresh link: it belongs to no account" in result.stderr
    assert outbox_row(relay_ctx, outbox_id).status == OutboxStatus.FAILED


def test_preview(tmp_path: Path, mailflow: Callable[..., Result]) -> None:
    shown = mailflow("preview", "registration-received")
    assert shown.returncode == 0
    assert shown.stdout.startswith("Subject: 通行證系統帳號註冊通知信件\n")
    assert "洽客服專線:0809-088-568免付費" in shown.stdout
    out = tmp_path / "x.html"
    written = mailflow("preview", "account-rejected", "--html", "--out", str(out))
    assert written.returncode == 0
    assert "<li>「營利事業登記證」" in out.read_text(encoding="utf-8")
    unknown = mailflow("preview", "nope")
    assert unknown.returncode == 2 and "registration-received" in unknown.stderr


def test_preview_of_the_support_digest_reads_like_the_real_one(mailflow: Callable[..., Result]) -> None:
    """Issue 15 item 19: the sample's items came out as `-  bounce  example1234 统編 …` (codes, empty
    fields, a simplified character) and with Gregorian times where the real digest writes 民國 ones."""
    text = mailflow("preview", "support-digest").stdout
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(items) == 2, text
    line = re.compile(r"^- 民國\d+年\d+月\d+日 \d\d:\d\d (退信|申請人回信) 王小明 example1234 統編 \d{8} "
                      r"手機 [\d-]+$")
    assert all(line.match(item) for item in items), items
    html = mailflow("preview", "support-digest", "--html").stdout
    assert "<strong>退信</strong>" in html and "民國" in html
    for shown in (text, html):
        assert "统" not in shown and "bounce" not in shown.replace("bounce+", "")
