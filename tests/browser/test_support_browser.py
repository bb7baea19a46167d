"""Customer service in a real browser (Debian's chromium driven by Playwright): sign in, find the bounced
applicant, correct the address, and see the new mail at /dev/mailbox with a link that verifies.

A real uvicorn on a free port, the capture SMTP server and dispatch run in this process; nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.mail.capture import start_capture_server
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import Account, OutboxMessage, OutboxStatus
from tests.support.factories import (
    APPLICANT_PASSWORD,
    STAFF_PASSWORD,
    make_applicant,
    make_bounce_item,
    make_mail,
    make_staff,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = [pytest.mark.browser, pytest.mark.once]


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (CI installs it and must run this test)")


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[AppContext, str]]:
    """The app on a real uvicorn (port chosen by the kernel), with links in mails pointing at it."""
    import uvicorn

    from mailflow.web.app import create_app

    _need_chromium()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings.http.base_url = origin
    ctx = AppContext.from_settings(settings)
    capture = start_capture_server(ctx)
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):  # waiting for readiness, not measuring anything
        if server.started:
            break
        time.sleep(0.02)
    try:
        yield ctx, origin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        capture.stop()
        sock.close()
        ctx.db.dispose()


def seed(ctx: AppContext) -> int:
    """王小明 was approved; the approval mail bounced (user unknown), so the address is suppressed."""
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        acc.email_undeliverable = True
        make_bounce_item(session, acc, app, make_mail(session, acc, "account-approved"))
        suppression.suppress(session, acc.email, "userunknown")
        make_staff(session, name="chen", role="support")
        return acc.id


def test_support_corrects_the_address_and_the_new_link_verifies(live: tuple[AppContext, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    ctx, origin = live
    account_id = seed(ctx)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="zh-TW")
            page.goto(f"{origin}/support")
            assert "/staff/login" in page.url
            page.fill("#name", "chen")
            page.fill("#password", STAFF_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/support*")
            expect(page.locator("h1")).to_have_text("客服儀表板")

            page.fill("#q", "04595257")  # the applicant gives their 統一編號 on the phone
            page.click("form.filters button[type=submit]")
            row = page.locator("tr.support-item").filter(has_text="王小明")
            expect(row).to_contain_text("收件人信箱不存在")
            expect(row).to_contain_text("0912345678")
            row.get_by_role("link", name="查看與處理").click()

            page.fill("#new-email", "wang.new@example.com")
            page.check("input[name=lift_old]")
            page.click("form.correct-email button[type=submit]")
            expect(page.locator(".notice.ok")).to_contain_text("Email 已更正")
            expect(page.locator("#current-email")).to_contain_text("wang.new@example.com")

            report = run_dispatch(ctx)  # the scheduler's tick, run here so the test need not wait for it
            with ctx.db.session() as session:
                mail = session.scalars(
                    select(OutboxMessage).where(OutboxMessage.to_key == "wang.new@example.com")
                ).one()
                assert mail.status == OutboxStatus.SENT, report

            page.goto(f"{origin}/dev/mailbox")
            expect(page.locator("body")).to_contain_text("wang.new@example.com")
            link = page.locator("a[href*='/verify/']").first.get_attribute("href")
            assert link and link.startswith(f"{origin}/verify/")
            answer = page.goto(link)
            assert answer is not None and answer.status == 200
            page.fill("#password", APPLICANT_PASSWORD)
            with page.expect_response(lambda r: r.request.method == "POST" and "/verify/" in r.url) as posted:
                page.click("form button[type=submit]")
            assert posted.value.status == 200
        finally:
            browser.close()
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert (
            account is not None
            and account.is_verified
            and account.email_verified_address == "wang.new@example.com"
        )
        assert suppression.active_suppression(session, "wang@example.com") is None
