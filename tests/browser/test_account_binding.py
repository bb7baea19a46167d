"""A shared account binds a company from its own /account page in a real browser (issue 15 item 1) at
320, 360 and 1280 px: the form, the pending request as a card with its 取消請求 in view, the consent mail
arriving at the company, and the cancellation asked before it is done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from browser.conftest import LiveSite
from tests.browser.test_a11y_mobile import problems_on
from tests.factories import SHARED_PASSWORD, add_general, add_shared

pytestmark = [pytest.mark.browser, pytest.mark.once]

IN_VIEW = """(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
  return r.left >= 0 && r.right <= document.documentElement.clientWidth; }"""


@pytest.mark.parametrize("width", [320, 360, 1280])
def test_a_shared_account_asks_for_a_binding_and_cancels_it(live_site: LiveSite, page: Any, width: int,
                                                            shot: Callable[..., Path]) -> None:
    add_general(live_site.ctx, "harbor01", "04595257")
    add_shared(live_site.ctx)
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_site.url}/account")
    page.fill("#login-account", "manager01")
    page.fill("#login-password", SHARED_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/account/login'] button[type=submit]")
    page.fill("#general-account", "harbor01")
    with page.expect_navigation():
        page.click("form[action='/account/bindings'] button[type=submit]")
    expect(page.locator(".notice.ok")).to_contain_text("已寄出綁定確認信")
    card = page.locator("tr.binding")
    expect(card).to_contain_text("harbor01")
    expect(card).to_contain_text("等待確認")
    expect(card).to_contain_text("對方確認後顯示")
    assert page.evaluate(IN_VIEW, "tr.binding button") , "取消請求 is on screen, not behind a scroll"
    assert problems_on(page, width) == []
    page.evaluate("document.querySelector('form.bind-form').scrollIntoView()")  # the form and the request
    shot(page, f"account-binding-{width}", docs=width == 360)
    live_site.wait_for_mail("binding-request", "harbor01@example.com")
    with page.expect_navigation():
        card.get_by_role("button", name="取消請求").click()
    assert asked == ["確定要取消此綁定請求?"]
    expect(page.locator(".notice.ok")).to_have_text("已取消綁定請求。")
    expect(page.locator("tr.binding")).to_have_count(0)
