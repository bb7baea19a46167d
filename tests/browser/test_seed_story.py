"""The seed story as a person lives it, in a real browser against a real server: register (with a mistake
first), the registration mail in /dev/mailbox, a reviewer approves after looking at the document, the
applicant follows the link and verifies, a bounce reaches customer service and is resolved. Also the guided
first run: `mailflow demo` and the banner of `mailflow run`."""

from __future__ import annotations

import io
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from inbound.test_intake_helpers import dsn
from playwright.sync_api import expect
from sqlalchemy import func, select

from browser.conftest import REPO, LiveSite, staff_login
from mailflow.accounts.rules import MESSAGES
from mailflow.cli import main as mailflow_cli
from mailflow.commands.demo import APPLICANT_PASSWORD, APPLICANTS, STATES, demo_pdf, seed_demo
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import (
    Account,
    Application,
    ApplicationStatus,
    InboundMessage,
    InboundStatus,
    OutboxMessage,
    StaffUser,
    SupportItem,
    SupportKind,
)
from tests.peers import free_port, wait_until

APPLICANT = {
    "account": "example1234", "name": "王小明", "mobile": "0912345678", "email": "wang@example.com.tw",
    "password": "Harbour-Pass9", "password_confirm": "Harbour-Pass9", "ubn": "04595257",
    "company_phone": "02-12345678#12345", "company_name": "臺灣港務股份有限公司基隆分公司",
    "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "王大明",
}
SUCCESS = "帳號資料已經成功送出,請收取Email!!"
CONFIRM = "確定要送出申請?"


def add_staff(monkeypatch: pytest.MonkeyPatch, ctx: AppContext, name: str, role: str) -> str:
    """A staff login made the way an operator makes it: `mailflow staff add NAME --password-stdin`."""
    password = f"{name}-Secret-2024"
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    assert mailflow_cli(["staff", "add", name, "--role", role, "--password-stdin"]) == 0
    return password


def register_with_a_mistake(page: Any, site: LiveSite, shot: Callable[..., Path], document: Path) -> None:
    page.goto(f"{site.url}/register")
    shot(page, "register-form")
    for name, value in APPLICANT.items():
        page.fill(f"#{name}", value)
    page.fill("#mobile", "02-2345678")  # a landline where the mobile goes
    page.set_input_files("#document", str(document))
    page.click("button[type=submit]")  # blocked: the form "does nothing" but marks the field
    expect(page.locator("#mobile-error")).to_have_text(MESSAGES["mobile"])
    expect(page.locator("#mobile")).to_have_attribute("aria-invalid", "true")
    shot(page, "register-field-error", docs=True)
    page.fill("#mobile", APPLICANT["mobile"])
    expect(page.locator("#mobile-error")).to_have_text("")
    dialogs: list[str] = []

    def confirm(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert dialogs == [CONFIRM]
    expect(page.locator("main")).to_contain_text(SUCCESS)
    shot(page, "register-done", docs=True)


def review_and_approve(page: Any, site: LiveSite, shot: Callable[..., Path], password: str,
                       document: Path) -> None:
    staff_login(page, site, "/review", "reviewer1", password)
    row = page.locator("tr", has_text=APPLICANT["account"])
    expect(row).to_contain_text(APPLICANT["company_name"])
    shot(page, "review-queue")
    row.get_by_role("link", name=APPLICANT["account"]).click()
    expect(page.locator("h1")).to_contain_text(APPLICANT["account"])
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="另開視窗").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert "/document" in viewer.url
    served = page.request.get(viewer.url)  # what the viewer shows is the very file the applicant sent
    assert served.status == 200 and served.body() == document.read_bytes()
    viewer.close()
    shot(page, "review-application", docs=True)
    page.fill("#note", "文件清晰完整")
    asked: list[str] = []

    def confirm(dialog: Any) -> None:  # 核准 cannot be undone, so the page asks first
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with page.expect_navigation():
        page.get_by_role("button", name="核准").click()
    assert len(asked) == 1 and "核准" in asked[0]
    expect(page.locator("[role=status]")).to_contain_text("已核准")
    expect(page.locator("h1")).to_contain_text("已通過")


def verify_from_the_mailbox(page: Any, site: LiveSite, shot: Callable[..., Path]) -> None:
    mail = site.wait_for_mail("account-approved", APPLICANT["email"])
    page.goto(f"{site.url}/dev/mailbox/{mail.id}")
    link = page.locator("a[href*='/verify/']").first
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1")).to_have_text("Email 驗證")
    page.fill("#password", "Wrong-Pass1")
    page.click("form[action^='/verify/'] button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("密碼錯誤")
    expect(page.locator("h1")).to_have_text("Email 驗證")  # the same form again, with the reason
    page.fill("#password", APPLICANT["password"])
    shot(page, "verify-form")
    page.click("form[action^='/verify/'] button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("已完成驗證")
    shot(page, "verify-done", docs=True)
    login = page.request.post(f"{site.url}/api/session",
                              data={"account": APPLICANT["account"], "password": APPLICANT["password"]})
    assert login.status == 200, login.text()


def bounce_the_registration_mail(site: LiveSite) -> int:
    """The applicant's provider says the mailbox is gone: a DSN to the signed return path of the
    registration mail, over SMTP to our inbound server, as a remote MTA would send it."""
    captured = site.wait_for_mail("registration-received", APPLICANT["email"])
    with site.ctx.db.session() as session:
        mail = session.scalars(select(OutboxMessage).where(
            OutboxMessage.template == "registration-received")).one()
        raw = dsn(site.ctx.settings, mail, return_path=captured.mail_from)
    with smtplib.SMTP("127.0.0.1", site.inbound_port, timeout=30) as smtp:
        smtp.sendmail("", [captured.mail_from], raw)

    def hard_bounce_item() -> int | None:
        with site.ctx.db.session() as session:
            return session.scalars(select(SupportItem.id)
                                   .where(SupportItem.kind == SupportKind.HARD_BOUNCE)).first()

    wait_until(lambda: hard_bounce_item() is not None, 30, "the bounce to open a support item")
    item_id = hard_bounce_item()
    assert item_id is not None
    return item_id


def resolve_in_support(page: Any, site: LiveSite, shot: Callable[..., Path], password: str,
                       item_id: int) -> None:
    page.context.clear_cookies()  # the reviewer leaves; customer service sits down
    staff_login(page, site, "/support", "support1", password)
    row = page.locator(f"tr[data-item-id='{item_id}']")
    expect(row).to_contain_text(APPLICANT["email"])
    shot(page, "support-dashboard", docs=True)
    row.get_by_role("link", name="查看與處理").click()
    expect(page.locator("h1")).to_contain_text(f"#{item_id}")
    with page.expect_navigation():
        page.get_by_role("button", name="標記為處理完成").click()
    expect(page.locator("main")).to_contain_text("處理完成")
    shot(page, "support-resolved")


@pytest.mark.browser
@pytest.mark.once  # a whole story in a browser: once is enough, the database layer is tested elsewhere
def test_the_seed_story_in_a_browser(live_site: LiveSite, page: Any, shot: Callable[..., Path],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    document = tmp_path / "公司登記表.pdf"
    document.write_bytes(demo_pdf("Company registration form"))
    reviewer = add_staff(monkeypatch, live_site.ctx, "reviewer1", "reviewer")
    support = add_staff(monkeypatch, live_site.ctx, "support1", "support")

    register_with_a_mistake(page, live_site, shot, document)
    live_site.wait_for_mail("registration-received", APPLICANT["email"])
    page.goto(f"{live_site.url}/dev/mailbox")
    expect(page.locator("details.mail").first).to_contain_text("通行證系統帳號註冊通知信件")
    shot(page, "dev-mailbox", docs=True)

    review_and_approve(page, live_site, shot, reviewer, document)
    verify_from_the_mailbox(page, live_site, shot)
    item_id = bounce_the_registration_mail(live_site)
    resolve_in_support(page, live_site, shot, support, item_id)

    with live_site.ctx.db.session() as session:
        account = session.scalars(select(Account).where(Account.account == APPLICANT["account"])).one()
        assert account.email_verified_at is not None
        application = session.scalars(select(Application)).one()
        assert application.status == ApplicationStatus.APPROVED and application.decided_by
        item = session.get(SupportItem, item_id)
        assert item is not None and item.resolved_by == "support1"


# --- the guided first run ---------------------------------------------------------------------------


def counts(ctx: AppContext) -> dict[str, int]:
    with ctx.db.session() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Account, Application, OutboxMessage, SupportItem, StaffUser, InboundMessage)}


def test_demo_seeds_every_state_and_running_it_again_adds_nothing(ctx: AppContext) -> None:
    first = seed_demo(ctx)
    assert [who.account for who in first.created] == [who.account for who in APPLICANTS]
    before = counts(ctx)
    second = seed_demo(ctx)
    assert second.created == [] and len(second.existing) == len(APPLICANTS)
    assert counts(ctx) == before
    assert first.staff.keys() == second.staff.keys() == {"demo-reviewer", "demo-support"}
    with ctx.db.session() as session:
        by_account = {a.account.account: a for a in session.scalars(select(Application))}
        states = {who.account: who.state for who in APPLICANTS}
        status = {name: app.status for name, app in by_account.items()}
        assert status == {name: {"submitted": "submitted", "rejected": "rejected"}.get(state, "approved")
                          for name, state in states.items()}
        verified = {name for name, app in by_account.items() if app.account.email_verified_at}
        assert verified == {name for name, state in states.items() if state == "verified"}
        [item] = session.scalars(select(SupportItem)).all()
        assert item.kind == SupportKind.HARD_BOUNCE
        assert item.account_id == by_account["demo05bounced"].account_id
        # The bounce went through the inbound pipeline, proven by our return path: one stored mail, tied
        # to the approval mail it answers, which stopped mail to the address and flagged the account.
        bounced = by_account["demo05bounced"]
        [inbound] = session.scalars(select(InboundMessage)).all()
        assert inbound.status == InboundStatus.PROCESSED and inbound.kind == "bounce"
        assert inbound.outbox_id == item.outbox_id and item.application_id == bounced.id
        assert session.get(OutboxMessage, item.outbox_id).template == "document-approved"  # type: ignore[union-attr]
        assert item.reason == "userunknown"
        assert bounced.account.email_undeliverable
        assert suppression.active_suppression(session, bounced.account.email) is not None


def test_demo_from_the_command_line_prints_the_logins(ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    monkeypatch.setenv("MAILFLOW_STORAGE__DOCUMENTS_DIR", ctx.settings.storage.documents_dir)
    monkeypatch.setenv("MAILFLOW_SMTP__MODE", "capture")
    assert mailflow_cli(["demo"]) == 0
    out = capsys.readouterr().out
    assert "demo-reviewer / " in out and "demo-support / " in out and APPLICANT_PASSWORD in out
    assert all(text in out for text in STATES.values())
    assert "/dev/mailbox" in out and "/register" in out


def test_demo_refuses_relay_mode(ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", ctx.settings.database.url)
    monkeypatch.setenv("MAILFLOW_SMTP__MODE", "relay")
    monkeypatch.setenv("MAILFLOW_HTTP__BASE_URL", "https://hep.twport.com.tw")
    monkeypatch.setenv("MAILFLOW_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("MAILFLOW_SMTP__PORT", "2525")
    monkeypatch.setenv("MAILFLOW_SECURITY__SECRET_KEY", "a-real-production-secret-key-0123456789")
    assert mailflow_cli(["demo"]) == 2
    assert "capture mode only" in capsys.readouterr().err
    assert counts(ctx)["Account"] == 0 and counts(ctx)["StaffUser"] == 0


def wait_until_serving(url: str) -> None:
    def serving() -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(serving, 30, f"{url} to answer")


@pytest.mark.once  # starts a whole daemon in a subprocess on its own SQLite file
def test_mailflow_run_on_a_fresh_machine_says_where_to_go_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MAILFLOW_DATABASE__URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"), "MAILFLOW_HTTP__PORT": str(port),
           "MAILFLOW_HTTP__BASE_URL": f"http://127.0.0.1:{port}", "MAILFLOW_SMTP__MODE": "capture",
           "MAILFLOW_SMTP__PORT": "0", "MAILFLOW_INBOUND__SMTP_PORT": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("MAILFLOW_CONFIG", None)
    process = subprocess.Popen([sys.executable, "-m", "mailflow", "run"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    wanted = [f"http://127.0.0.1:{port}/register", f"http://127.0.0.1:{port}/dev/mailbox",
              "mailflow staff add"]
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the banner comes before the server is up; a crash ends the loop
            seen.append(line)
            if all(any(text in s for s in seen) for text in wanted):
                break
        assert all(any(text in s for s in seen) for text in wanted), "".join(seen)
        wait_until_serving(f"http://127.0.0.1:{port}/healthz")  # a stop during start-up is another test
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)  # reading on keeps the daemon from blocking on a full pipe
        assert process.returncode == 0, rest[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
