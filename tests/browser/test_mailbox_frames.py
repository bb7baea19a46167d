"""/dev/mailbox shows each HTML mail in a frame as tall as the mail (issue 15 item 14): nothing cut off at
a fixed height, no scroll bar inside the frame, at 320, 360 and 1280 px; and the mail still runs no
script in its frame."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser.conftest import LiveSite
from mailflow.mail.render import sample_context
from tests.browser.test_a11y_mobile import problems_on
from tests.mail.helpers import queue_mail

pytestmark = [pytest.mark.browser, pytest.mark.once]

FITTED = """(f) => f.contentDocument && f.contentDocument.URL.endsWith('/html')
  && f.contentDocument.readyState === 'complete'
  && Math.abs(f.getBoundingClientRect().height - f.contentDocument.documentElement.scrollHeight) <= 4"""
FRAME_FIT = """(frame) => {
  const doc = frame.contentDocument;
  return {frame: frame.getBoundingClientRect().height, mail: doc.documentElement.scrollHeight,
          scrolls: doc.scrollingElement.scrollHeight > doc.scrollingElement.clientHeight + 1};
}"""


@pytest.mark.parametrize("width", [320, 360, 1280])
def test_each_mail_frame_is_as_tall_as_its_mail(live_site: LiveSite, page: Any, width: int) -> None:
    ctx = live_site.ctx
    # The digest is long (many items); the rejection is short: the frame follows each.
    context = sample_context("support-digest", ctx.settings)
    queue_mail(ctx, "support@example.com", template="support-digest", context=context)
    queue_mail(ctx, "wang@example.com", template="account-rejected",
               context=sample_context("account-rejected", ctx.settings))
    live_site.wait_for_mail("support-digest", "support@example.com")
    live_site.wait_for_mail("account-rejected", "wang@example.com")
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_site.url}/dev/mailbox")
    page.locator("details.mail summary").nth(1).click()  # open the second (older) mail too
    frames = page.locator("iframe.mail-html")
    expect(frames).to_have_count(2)
    heights = []
    for index in range(2):
        frame = frames.nth(index)
        frame.scroll_into_view_if_needed()
        page.wait_for_function(FITTED, arg=frame.element_handle())  # fails by timing out if it never fits
        fit = frame.evaluate(FRAME_FIT)
        assert not fit["scrolls"], fit
        assert abs(fit["frame"] - fit["mail"]) <= 4, fit
        heights.append(fit["frame"])
    assert max(heights) > 480  # the digest is longer than the old fixed frame, and now fully shown
    assert problems_on(page, width) == []
    assert frames.first.get_attribute("sandbox") == "allow-same-origin"  # no allow-scripts
