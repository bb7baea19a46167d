"""Every mail's HTML part in a real browser engine, the two ways a person meets it: a phone's mail app
(the whole document at 360 px) and a webmail page (Gmail, Outlook on the web and HiNet drop the <head>,
keep the body's content and show it inside a column of their own page). In each: no sideways scrolling,
every link of the text part is a link in the HTML, each button-like link is a target of at least
24 x 24 px, no remote image, the no-reply footer with the service number is there (and absent from the
mails to customer service).

This is the nearest check this machine allows: the webmails themselves cannot be reached from here."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import DESKTOP, PHONE, SMALL_PHONE
from mailflow.config import Settings
from mailflow.mail import TEMPLATE_NAMES
from mailflow.mail.render import sample_context
from tests.mail.test_render import STAFF_TEMPLATES, parts, render

pytestmark = [pytest.mark.browser, pytest.mark.once]  # the templates, not the database, are under test

URL = re.compile(r"https?://[^\s<>\"')]+")
# A webmail's page around the message: its own fonts and margins, the message in a column of the page.
WEBMAIL_PAGE = """<!doctype html><html lang="zh-Hant-TW"><head><meta name="viewport"
content="width=device-width, initial-scale=1"><style>body{{margin:0;font:13px Arial,sans-serif;color:#222}}
.toolbar{{height:48px;background:#eee}} .message{{width:{width}px;max-width:100%;padding:8px 12px;
box-sizing:border-box}}</style></head><body><div class="toolbar"></div><div class="message">{body}</div>
</body></html>"""
TOO_WIDE = """() => {
  const limit = document.documentElement.clientWidth;
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > limit + 1)
    .slice(0, 5).map(e => e.tagName.toLowerCase() + ' ' + (e.textContent || '').trim().slice(0, 40));
}"""
SMALL_BUTTONS = """() => [...document.querySelectorAll('a')]
  .filter(a => getComputedStyle(a).display === 'inline-block')
  .filter(a => { const r = a.getBoundingClientRect(); return r.width < 24 || r.height < 24; })
  .map(a => a.textContent.trim())"""
# A label cell (a short cell with a value cell beside it: 帳號, 公司名稱, 送出時間) broken over two lines.
WRAPPED_LABELS = """() => [...document.querySelectorAll('td, th')]
  .filter(c => c.nextElementSibling && c.textContent.trim().length <= 8 && c.textContent.trim())
  .filter(c => { const r = document.createRange(); r.selectNodeContents(c);
                 return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1; })
  .map(c => c.textContent.trim())"""
REMOTE_OR_UNNAMED_IMAGES = """() => [...document.images]
  .filter(i => /^https?:/.test(i.getAttribute('src') || '') || !i.hasAttribute('alt'))
  .map(i => i.outerHTML.slice(0, 120))"""


def problems_in(page: Any, text_part: str, staff: bool = False) -> list[str]:
    found: list[str] = []
    width = page.evaluate("document.documentElement.clientWidth")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    if scroll > width:
        found.append(f"scrolls sideways ({scroll} px > {width} px): {page.evaluate(TOO_WIDE)}")
    hrefs = set(page.evaluate("() => [...document.links].map(a => a.href)"))
    found += [f"not a link in the HTML: {url}" for url in URL.findall(text_part) if url not in hrefs]
    found += [f"button smaller than 24 px: {name}" for name in page.evaluate(SMALL_BUTTONS)]
    found += [f"label cell wraps: {label}" for label in page.evaluate(WRAPPED_LABELS)]
    found += [f"remote or unnamed image: {tag}" for tag in page.evaluate(REMOTE_OR_UNNAMED_IMAGES)]
    body = page.inner_text("body")
    if "0809-088-568" not in body:  # every mail carries the support line and hours (the contract)
        found.append("no service number in the footer")
    if staff and "若有問題" in body:  # customer service is not told to phone itself
        found.append("a mail to staff asks its reader to phone customer service")
    return found


# Variants of one template chosen by its context: "template:kind" (a shared account's verification mails).
VARIANTS = ("account-approved:shared", "verify-reminder:shared")


@pytest.mark.parametrize("template", [*TEMPLATE_NAMES, *VARIANTS])
def test_every_mail_reads_well_in_a_mail_app_and_in_webmail(browser: Any, settings: Settings, template: str,
                                                           shot: Callable[..., Path]) -> None:
    name, _, kind = template.partition(":")
    values = {**sample_context(name, settings), "kind": kind} if kind else None
    text_part, html_part = parts(render(settings, name, context=values)[1])
    context = browser.new_context(locale="zh-TW", timezone_id="Asia/Taipei",
                                  java_script_enabled=True, offline=True)  # as a mail client: no fetching
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        for label, viewport in (("small phone app", SMALL_PHONE), ("phone app", PHONE),
                                ("desktop app", DESKTOP)):
            page.set_viewport_size(viewport)
            page.set_content(html_part)
            found[label] = problems_in(page, text_part, staff=template in STAFF_TEMPLATES)
            in_readme = (template, label) == ("account-approved", "phone app")
            shot(page, f"mail-{template}-{label}", docs=in_readme)
        body = page.evaluate("document.body.innerHTML")  # what a webmail keeps of the message
        for label, viewport, column in (("small phone webmail", SMALL_PHONE, SMALL_PHONE["width"]),
                                        ("phone webmail", PHONE, PHONE["width"]),
                                        ("desktop webmail", DESKTOP, 640)):
            page.set_viewport_size(viewport)
            page.set_content(WEBMAIL_PAGE.format(width=column, body=body))
            found[label] = problems_in(page, text_part, staff=template in STAFF_TEMPLATES)
            inner = page.evaluate("() => { const m = document.querySelector('.message');"
                                  " return [m.scrollWidth, m.clientWidth]; }")
            if inner[0] > inner[1]:
                found[label].append(f"wider than the webmail's column ({inner[0]} px > {inner[1]} px)")
            shot(page, f"mail-{template}-{label}")
    finally:
        context.close()
    assert {k: v for k, v in found.items() if v} == {}, template


def test_the_check_finds_a_mail_that_does_not_fit(browser: Any) -> None:
    """The checks above can fail: a fixed 700 px table, a bare URL that is no link, a tiny button."""
    bad = ('<table width="700" style="width:700px"><tr><td>寬表格</td></tr></table>'
           '<a href="https://a.example/x" style="display:inline-block;font-size:6px">x</a>'
           '<table style="width:100%"><tr><td>公司名稱</td><td>' + "臺灣港務股份有限公司基隆分公司" * 3
           + '</td></tr></table><p>0809-088-568</p>')
    page = browser.new_page(viewport=PHONE)
    try:
        page.set_content(bad)
        found = problems_in(page, "請開啟 https://b.example/y")
    finally:
        page.close()
    assert any(f.startswith("scrolls sideways") for f in found)
    assert "not a link in the HTML: https://b.example/y" in found
    assert "button smaller than 24 px: x" in found
    assert "label cell wraps: 公司名稱" in found
