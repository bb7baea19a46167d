"""The reviewer in a real browser at 320, 360 and 1280 px (issue 15 item 10): an applicant whose address is
on the suppression list is flagged before the decision, 核准 asks first (dismissing sends nothing), and
after it the page says that no mail went out and customer service has an item."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser.conftest import LiveSite, staff_login
from mailflow.mail import suppression
from mailflow.models import Application, ApplicationStatus, SupportItem
from tests.browser.test_a11y_mobile import problems_on
from tests.factories import STAFF_PASSWORD, add_submitted, make_staff

pytestmark = [pytest.mark.browser, pytest.mark.once]


@pytest.mark.parametrize("width", [320, 360, 1280])
def test_approving_a_suppressed_applicant_warns_asks_and_says_what_happened(live_site: LiveSite, page: Any,
                                                                           width: int) -> None:
    ctx = live_site.ctx
    application_id = add_submitted(ctx)
    with ctx.db.session() as session:
        suppression.suppress(session, "example1234@example.com", "hard_bounce", "550 5.1.1 user unknown")
        make_staff(session, name="huang", role="reviewer")
    answers = iter([False, True])
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept() if next(answers) else dialog.dismiss()

    page.on("dialog", answer)
    page.set_viewport_size({"width": width, "height": 800})
    path = f"/review/applications/{application_id}"
    staff_login(page, live_site, path, "huang", STAFF_PASSWORD)
    expect(page.locator(".unsent-warning")).to_contain_text("停止寄送名單")
    assert problems_on(page, width) == []
    approve = page.locator(f"form[action='{path}/approve'] button[type=submit]")
    approve.click()  # asked, and dismissed: nothing is decided
    assert len(asked) == 1 and "核准通知不會寄出" in asked[0]
    with ctx.db.session() as session:
        assert session.get(Application, application_id).status == ApplicationStatus.SUBMITTED
    with page.expect_navigation():
        approve.click()  # asked again, and confirmed
    notice = page.locator(".notice[role=status]")
    expect(notice).to_contain_text("通知信沒有寄出")
    expect(notice).to_have_class("notice err")
    with ctx.db.session() as session:
        assert session.get(Application, application_id).status == ApplicationStatus.APPROVED
        assert len(session.scalars(select(SupportItem)).all()) == 1
