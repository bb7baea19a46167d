"""/register with JavaScript in chromium: the form checks as the clerk types and asks before it sends (the
path without JavaScript is tests/web/test_register_form.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from browser.conftest import LiveSite
from mailflow.accounts.rules import MESSAGES
from mailflow.context import AppContext
from mailflow.models import Application
from tests.web.test_register_form import FORM, PDF, stored

pytestmark = [pytest.mark.browser, pytest.mark.once]  # the browser adds nothing per database backend


def test_with_javascript_the_form_checks_as_you_type_and_confirms_before_submit(
    live_site: LiveSite, page: Any, ctx: AppContext, tmp_path: Any
) -> None:
    document = tmp_path / "company.pdf"
    document.write_bytes(PDF)
    page.goto(f"{live_site.url}/register")
    page.fill("#account", "1ab")
    assert page.text_content("#account-error") == MESSAGES["account"]
    assert page.get_attribute("#account", "aria-invalid") == "true"
    assert page.eval_on_selector("#account", "e => e.closest('.field').classList.contains('invalid')")
    page.fill("#account", FORM["account"])
    assert page.text_content("#account-error") == ""
    for field, value in FORM.items():
        if field != "account":
            page.fill(f"#{field}", value)
    page.fill("#name", "王小明有限公司")
    assert page.text_content("#name-error") == MESSAGES["name_company"]
    page.fill("#password_confirm", "Other-Pass9")
    assert page.text_content("#password_confirm-error") == MESSAGES["password_confirm"]
    page.fill("#password_confirm", FORM["password"])
    page.fill("#ubn", "12345678")
    assert page.text_content("#ubn-error") == MESSAGES["ubn"]
    page.fill("#ubn", "１２３４５６７５")  # full-width, valid only through the 7th-digit-7 rule
    assert page.text_content("#ubn-error") == ""

    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss() if len(dialogs) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.click("button[type=submit]")  # blocked: the name and the document are wrong
    page.wait_for_function("document.getElementById('document-error').textContent !== ''")
    assert page.text_content("#document-error") == MESSAGES["document"]
    assert page.evaluate("document.activeElement.id") == "name"
    assert dialogs == []
    page.fill("#name", FORM["name"])
    page.set_input_files("#document", str(document))
    page.click("button[type=submit]")  # asked, and cancelled
    while not dialogs:  # the check of the file's first bytes runs before the question
        page.wait_for_timeout(20)
    assert page.url.endswith("/register") and page.text_content("#document-error") == ""
    assert stored(ctx) == 0
    with page.expect_navigation():
        page.click("button[type=submit]")  # asked again, and confirmed
    assert dialogs == ["確定要送出申請?", "確定要送出申請?"]
    assert "帳號資料已經成功送出,請收取Email!!" in page.content()
    with ctx.db.session() as session:
        assert session.scalars(select(Application.ubn)).one() == "12345675"
