"""The confirmations that moved out of inline handlers (the pages' CSP allows no inline script) still ask
before a form is sent, in a real browser: dismissing keeps the form unsent, accepting sends it."""

from __future__ import annotations

from typing import Any

import pytest

from browser.conftest import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_the_shared_registration_asks_before_it_is_sent(live_site: LiveSite, page: Any) -> None:
    asked: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    answer = {"accept": False}

    def on_dialog(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept() if answer["accept"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{live_site.url}/shared/register")
    page.click("form[action='/shared/register'] button[type=submit]")
    assert asked == ["確定要送出申請?"]
    assert page.url == f"{live_site.url}/shared/register"
    assert page.locator("[role=alert]").count() == 0  # nothing was sent, so no server-side errors yet
    answer["accept"] = True
    with page.expect_navigation():
        page.click("form[action='/shared/register'] button[type=submit]")
    assert asked == ["確定要送出申請?", "確定要送出申請?"]
    assert page.locator("[role=alert]").count() > 0  # sent empty: the server answered with its errors
    assert not [e for e in errors if "Content Security Policy" in e], errors
