"""Every page on a 320 px and a 360 px phone and on a desktop, as a person using a screen reader or only a
keyboard meets it: no sideways scrolling, every input/select/textarea named by a label, errors in live
regions, and the registration form completed with Tab, typing and Enter alone. The pages are filled by
`mailflow demo`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlalchemy import select

from browser.conftest import DESKTOP, PHONE, SMALL_PHONE, LiveSite, staff_login
from mailflow.commands.demo import APPLICANT_PASSWORD, demo_pdf, seed_demo
from mailflow.models import Account, Application, SupportItem

pytestmark = [pytest.mark.browser, pytest.mark.once]  # the pages, not the database, are under test

# What a page must not have, each as a JavaScript predicate returning the offending elements' descriptions.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 120))"""
SILENT_ERRORS = """() => [...document.querySelectorAll('.error, .notice.err, [aria-invalid=true] ~ .error')]
  .filter(e => !e.closest('[aria-live], [role=alert], [role=status]'))
  .map(e => e.outerHTML.slice(0, 120))"""
WIDER_THAN_VIEWPORT = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .filter(e => !e.closest('.table-wrap, pre'))
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className)"""


# On a phone no list may hide columns behind a sideways scroll (tables with actions are stacked cards)...
SCROLLING_TABLES = """() => [...document.querySelectorAll('.table-wrap')]
  .filter(w => w.scrollWidth > w.clientWidth + 1)
  .map(w => (w.querySelector('table') || w).className || 'table')"""
# ... and an account id or a name is never cut in two.
BROKEN_WORDS = """() => [...document.querySelectorAll('.id, .name')]
  .filter(e => e.getClientRects().length > 1
               || e.getBoundingClientRect().right > document.documentElement.clientWidth)
  .map(e => e.textContent.trim())"""
NARROW = 600  # the width below which mailflow.css stacks tables into cards


def problems_on(page: Any, width: int) -> list[str]:
    found: list[str] = []
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    if scroll > width:
        found.append(f"scrolls sideways ({scroll} px > {width} px): {page.evaluate(WIDER_THAN_VIEWPORT)}")
    if width <= NARROW:
        found += [f"table scrolls sideways: {name}" for name in page.evaluate(SCROLLING_TABLES)]
    found += [f"word broken across lines: {word}" for word in page.evaluate(BROKEN_WORDS)]
    found += [f"no label: {html}" for html in page.evaluate(UNLABELLED)]
    found += [f"error not announced: {html}" for html in page.evaluate(SILENT_ERRORS)]
    if not page.locator("h1").count():
        found.append("no h1")
    if page.locator("html").get_attribute("lang") != "zh-Hant-TW":
        found.append("page language is not zh-Hant-TW")
    return found


def demo_pages(site: LiveSite, page: Any) -> dict[str, str]:
    """The path of every kind of page, with demo records behind the ones that need one."""
    with site.ctx.db.session() as session:
        waiting = session.scalars(select(Application).join(Account)
                                  .where(Account.account == "demo01submitted")).one()
        item = session.scalars(select(SupportItem)).one()
        account_id = item.account_id
    site.wait_for_mail("account-approved", "demo02approved@example.com.tw")
    messages = page.request.get(f"{site.url}/dev/mailbox/api/messages",
                                params={"to": "demo02approved@example.com.tw"}).json()
    links = [link for m in messages for link in m.get("links", []) if "/verify/" in link]
    assert links, "the approval mail carries its verification link"
    return {
        "start": "/", "not-found": "/no-such-page",
        "register": "/register", "shared-register": "/shared/register", "verify-resend": "/verify/resend",
        "verify": links[0].removeprefix(site.url), "verify-bad-link": "/verify/not-a-token",
        "account-logged-out": "/account", "staff-login": "/staff/login",
        "mailbox": "/dev/mailbox",
        "review-queue": "/review", "review-application": f"/review/applications/{waiting.id}",
        "support": "/support", "support-item": f"/support/items/{item.id}",
        "support-account": f"/support/accounts/{account_id}",
        "account": "/account",
    }


def test_every_page_fits_a_phone_and_names_its_fields(live_site: LiveSite, page: Any,
                                                      shot: Callable[..., Path]) -> None:
    report = seed_demo(live_site.ctx)
    paths = demo_pages(live_site, page)
    staff_for = {"review-queue": "demo-reviewer", "review-application": "demo-reviewer",
                 "support": "demo-support", "support-item": "demo-support", "support-account": "demo-support"}
    found: dict[str, list[str]] = {}
    signed_in_as = ""
    for name, path in paths.items():
        wanted = staff_for.get(name, "")
        if wanted and wanted != signed_in_as:
            page.context.clear_cookies()
            staff_login(page, live_site, path, wanted, report.staff[wanted])
            signed_in_as = wanted
        if name == "account":
            login = page.request.post(f"{live_site.url}/api/session",
                                      data={"account": "demo03verified", "password": APPLICANT_PASSWORD})
            assert login.status == 200, login.text()
        for label, viewport in (("320", SMALL_PHONE), ("360", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(viewport)
            response = page.goto(f"{live_site.url}{path}")
            assert response is not None and response.status < 500, (name, response and response.status)
            if name == "account":
                expect(page.locator("main")).to_contain_text("demo03verified")
            elif wanted:
                expect(page).to_have_url(f"{live_site.url}{path}")
            problems = problems_on(page, viewport["width"])
            if problems:
                found[f"{name} at {label}"] = problems
            shot(page, f"{name}-{label}", docs=name in DOCS_PAGES.get(label, ()))
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


DOCS_PAGES = {"360": ("start", "register", "verify", "review-queue")}


def test_the_register_form_errors_are_announced_and_bound_to_their_fields(live_site: LiveSite,
                                                                         page: Any) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{live_site.url}/register")
    fields = page.eval_on_selector_all(
        "#register-form input:not([type=hidden])",
        "es => es.map(e => [e.id, e.getAttribute('aria-describedby') || ''])")
    assert len(fields) == 12
    for field_id, described_by in fields:
        error = page.locator(f"#{field_id}-error")
        assert f"{field_id}-error" in described_by.split(), field_id
        assert error.get_attribute("aria-live") in ("polite", "assertive"), field_id
    page.click("button[type=submit]")  # everything empty: every field says what it needs
    expect(page.locator("#account-error")).not_to_have_text("")
    assert page.evaluate("document.activeElement.id") == "account"  # focus goes to the first bad field


KEYBOARD_ORDER = [
    ("account", "keyboard01"), ("name", "陳美華"), ("mobile", "0933123456"), ("email", "mei@example.com.tw"),
    ("password", "Keyboard-Pass9"), ("password_confirm", "Keyboard-Pass9"), ("ubn", "22099131"),
    ("company_phone", "04-26562111"), ("company_name", "臺中港倉儲股份有限公司"),
    ("company_address", "435臺中市梧棲區臨港路四段1號"), ("company_owner", "陳大華"),
]


def open_file_dialog_by_keyboard(page: Any) -> Any:
    """The focused file field's dialog, opened from the keyboard: Space, as a person would, and Enter if
    Space brought none (once, in a CI run with both test processes busy, Space opened no dialog within
    30 s; the cause was not found) — either way the keyboard alone, on the same focused field."""
    for key, wait_ms in (("Space", 10_000), ("Enter", 30_000)):
        try:
            with page.expect_file_chooser(timeout=wait_ms) as chooser:
                page.keyboard.press(key)
            return chooser.value
        except PlaywrightTimeout:
            assert page.evaluate("document.activeElement.id") == "document"
    raise AssertionError("the file field opens no dialog from the keyboard")


def test_the_registration_form_can_be_completed_with_the_keyboard_alone(
    live_site: LiveSite, page: Any, tmp_path: Path, shot: Callable[..., Path]
) -> None:
    document = tmp_path / "公司登記表.pdf"
    document.write_bytes(demo_pdf("Keyboard only"))
    page.set_viewport_size(PHONE)
    page.goto(f"{live_site.url}/register")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到主要內容"  # the skip link comes first
    page.keyboard.press("Enter")
    for field_id, value in KEYBOARD_ORDER:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == field_id
        page.keyboard.type(value)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "document"
    chooser = open_file_dialog_by_keyboard(page)
    chooser.set_files(str(document))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"
    dialogs: list[str] = []

    def confirm(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()  # Enter on the OK button

    page.on("dialog", confirm)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert dialogs == ["確定要送出申請?"]
    expect(page.locator("main")).to_contain_text("帳號資料已經成功送出,請收取Email!!")
    shot(page, "keyboard-done")
    with live_site.ctx.db.session() as session:
        assert session.scalars(select(Application.ubn)).one() == "22099131"
