"""Customer service in a real browser (Debian's chromium driven by Playwright): sign in, find the bounced
applicant, correct the address, and see the new mail at /dev/mailbox with a link that verifies.

Runs on the shared live site of tests/browser/conftest.py (a real uvicorn, the capture SMTP server and a
dispatch loop on 127.0.0.1).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from browser.conftest import LiveSite, staff_login
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import Account, OutboxMessage, OutboxStatus
from tests.factories import (
    PASSWORD,
    STAFF_PASSWORD,
    make_applicant,
    make_bounce_item,
    make_mail,
    make_staff,
)

pytestmark = [pytest.mark.browser, pytest.mark.once]


def seed(ctx: AppContext) -> int:
    """王小明 was approved; the approval mail bounced (user unknown), so the address is suppressed."""
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        acc.email_undeliverable = True
        make_bounce_item(session, acc, app, make_mail(session, acc, "account-approved"))
        suppression.suppress(session, acc.email, "userunknown")
        make_staff(session, name="chen", role="support")
        return acc.id


def test_support_corrects_the_address_and_the_new_link_verifies(live_site: LiveSite, page: Any) -> None:
    from playwright.sync_api import expect

    ctx, origin = live_site.ctx, live_site.url
    account_id = seed(ctx)
    staff_login(page, live_site, "/support", "chen", STAFF_PASSWORD)
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

    # the live site's dispatch loop sends it
    captured = live_site.wait_for_mail("account-approved", "wang.new@example.com")
    with ctx.db.session() as session:
        mail = session.scalars(
            select(OutboxMessage).where(OutboxMessage.to_key == "wang.new@example.com")
        ).one()
        assert mail.status == OutboxStatus.SENT and mail.message_id == captured.message_id

    page.goto(f"{origin}/dev/mailbox")
    expect(page.locator("body")).to_contain_text("wang.new@example.com")
    link = page.locator("a[href*='/verify/']").first.get_attribute("href")
    assert link and link.startswith(f"{origin}/verify/")
    answer = page.goto(link)
    assert answer is not None and answer.status == 200
    page.fill("#password", PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST" and "/verify/" in r.url) as posted:
        page.click("form button[type=submit]")
    assert posted.value.status == 200
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert (
            account is not None
            and account.is_verified
            and account.email_verified_address == "wang.new@example.com"
        )
        assert suppression.active_suppression(session, "wang@example.com") is None


CHECKBOX_GEOMETRY = """() => {
  const box = document.querySelector('input[name=lift_old]');
  const words = box.closest('label').querySelector('span');
  const b = box.getBoundingClientRect(), first = words.getClientRects()[0];
  return {width: b.width, right: b.right, wordsLeft: first.left, top: b.top, lineTop: first.top,
          lineBottom: first.bottom, label: box.closest('label').getBoundingClientRect().left,
          field: box.closest('.field').getBoundingClientRect().left};
}"""


@pytest.mark.parametrize("width", [320, 360, 1280])
def test_the_item_page_checkbox_sits_before_its_words(live_site: LiveSite, page: Any, width: int) -> None:
    """Issue 15 item 11: `.field input {width: 100%}` once stretched the checkbox over the whole line and
    pushed its words under it, centred."""
    seed(live_site.ctx)
    page.set_viewport_size({"width": width, "height": 800})
    staff_login(page, live_site, "/support", "chen", STAFF_PASSWORD)
    page.locator("tr.support-item a", has_text="查看與處理").first.click()
    page.wait_for_selector("input[name=lift_old]")
    at = page.evaluate(CHECKBOX_GEOMETRY)
    assert at["width"] < 30, at  # a box, not a stretched bar
    assert at["right"] <= at["wordsLeft"], at  # the words start to its right
    assert at["lineTop"] - 2 <= at["top"] <= at["lineBottom"], at  # on the words' first line
    assert abs(at["label"] - at["field"]) < 1, at  # left-aligned, not centred
