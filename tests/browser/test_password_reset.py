"""忘記密碼 in a real browser at 320, 360 and 1280 px (issue 14): from the login's 忘記密碼 link to the form,
the mail arriving through the capture server, its link, the new-password page, and the login with the new
password. Each page fits the phone, names its fields and announces its errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from browser.conftest import LiveSite
from tests.browser.test_a11y_mobile import problems_on
from tests.factories import add_general

pytestmark = [pytest.mark.browser, pytest.mark.once]

NEW_PASSWORD = "Keelung-port-2025"
LINK = re.compile(r"https?://\S+/password/reset/[A-Za-z0-9_.-]+")


@pytest.mark.parametrize("width", [320, 360, 1280])
def test_a_forgotten_password_is_reset_from_the_login_page(live_site: LiveSite, page: Any, width: int,
                                                           shot: Callable[..., Path]) -> None:
    add_general(live_site.ctx, "harbor01", "04595257")
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_site.url}/account")
    with page.expect_navigation():
        page.get_by_role("link", name="忘記密碼").click()
    expect(page.locator("h1")).to_have_text("忘記密碼")
    page.fill("#account", "harbor01")
    assert problems_on(page, width) == []
    shot(page, f"password-forgot-{width}", docs=width == 360)
    with page.expect_navigation():
        page.get_by_role("button", name="寄出重設密碼信").click()
    expect(page.locator(".notice.ok")).to_contain_text("若資料正確,重設密碼信件已寄出")
    mail = live_site.wait_for_mail("password-reset", "harbor01@example.com")
    found = LINK.search(mail.raw.decode("utf-8", "replace").replace("=\r\n", ""))
    link = found.group(0) if found else ""
    if not link:  # the text part is base64: read the link from the mailbox's JSON
        messages = page.request.get(f"{live_site.url}/dev/mailbox/api/messages",
                                    params={"to": "harbor01@example.com"}).json()
        link = next(x for m in messages for x in m.get("links", []) if "/password/reset/" in x)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("設定新密碼")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD + "x")
    with page.expect_navigation():
        page.get_by_role("button", name="設定新密碼").click()
    expect(page.locator("#password_confirm-error")).to_have_text("兩次輸入的密碼不一致")
    assert problems_on(page, width) == []
    shot(page, f"password-reset-{width}", docs=width == 360)
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="設定新密碼").click()
    expect(page.locator(".notice.ok")).to_contain_text("密碼已變更")
    with page.expect_navigation():
        page.get_by_role("link", name="以新密碼登入").click()
    page.fill("#login-account", "harbor01")
    page.fill("#login-password", NEW_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/account/login'] button[type=submit]")
    expect(page.locator("main")).to_contain_text("harbor01")
    expect(page.locator("summary", has_text="變更 Email")).to_be_visible()
    assert problems_on(page, width) == []
    live_site.wait_for_mail("password-changed", "harbor01@example.com")
