"""The 帳號 field is checked as the clerk leaves it, in a real browser (issue 15 item 3): a taken account
id is named at once, before 確定要送出申請?, and a free one is confirmed; the shared-account form does the
same."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from browser.conftest import PHONE, LiveSite
from mailflow.accounts.registration import AVAILABLE_TEXT
from tests.web.test_register_api import FIELDS, PDF

pytestmark = [pytest.mark.browser, pytest.mark.once]


@pytest.mark.parametrize(("path", "field", "status"), [("/register", "#account", "#account-status"),
                                                      ("/shared/register", "#f-account", "#s-account")])
def test_a_taken_account_id_is_named_when_the_clerk_leaves_the_field(
    live_site: LiveSite, page: Any, path: str, field: str, status: str
) -> None:
    taken = httpx.post(f"{live_site.url}/api/applications", data=FIELDS,
                       files={"document": ("proof.pdf", PDF, "application/pdf")})
    assert taken.status_code == 201
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_site.url}{path}")
    error = page.locator(field).locator("xpath=..").locator(".error")
    page.fill(field, FIELDS["account"].upper())
    page.keyboard.press("Tab")
    expect(error).to_have_text("帳號已經存在")
    assert page.get_attribute(field, "aria-invalid") == "true"
    page.fill(field, "freshname2024")
    expect(error).to_have_text("")  # typing on clears it
    page.keyboard.press("Tab")
    expect(page.locator(status)).to_have_text(AVAILABLE_TEXT)
    assert dialogs == []  # nothing was submitted to find that out
