"""The registration form's checks as you type (mailflow/web/static/register.js) say exactly what the
server's rules say, for office phones and addresses written every way a clerk might (issue 15 item 2): the
same generated inputs go through chromium and through mailflow.accounts.rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from browser.conftest import LiveSite
from mailflow.accounts.rules import check_field
from tests.accounts.test_phones import ADDRESSES, office_numbers

pytestmark = [pytest.mark.browser, pytest.mark.once]

THROUGH_THE_FORM = """([field, values]) => {
  const input = document.getElementById(field);
  const error = document.getElementById(field + '-error');
  return values.map(value => {
    input.value = value;
    input.dispatchEvent(new Event('input', {bubbles: true}));
    return error.textContent;
  });
}"""

typed_phones = st.one_of(office_numbers().map(lambda n: n[3]),
                         office_numbers(lengths_ok=False).map(lambda n: n[3]),
                         st.text(max_size=32), st.text("0123456789 -()#轉分機ext+", max_size=24))
typed_addresses = st.one_of(st.sampled_from(ADDRESSES),
                            st.text("台臺灣中華民國省高雄市區路號0123456789 ", max_size=30),
                            st.sampled_from(ADDRESSES).map(lambda a: a.replace("台", "臺")))


# Addresses as typed (issue 13 finding 12): full-width, international domains, names that need SMTPUTF8,
# encoded words.
TYPED_EMAILS = ["a@ｘ.tw", "Lin@例え.jp", "ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "王小明@example.com",
                "=?utf-8?b?5L2g?=@x.tw", "user+tag@example.com", "a@例え", "abc", "a..b@x.tw",
                "wang@gmail.com", "é@x.tw", "a@台灣.tw"]


def server_says(field: str, value: str) -> str:
    return check_field(field, value)[1] or ""


@pytest.fixture
def form(live_site: LiveSite, page: Any) -> Any:
    page.goto(f"{live_site.url}/register")
    return page


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phones=st.lists(typed_phones, min_size=60, max_size=60),
       addresses=st.lists(typed_addresses, min_size=30, max_size=30))
def test_the_browser_and_the_server_agree(form: Any, phones: list[str], addresses: list[str]) -> None:
    for field, values in (("company_phone", phones), ("company_address", addresses)):
        in_browser = form.evaluate(THROUGH_THE_FORM, [field, values])
        on_server = [server_says(field, value) for value in values]
        assert [(v, b) for v, b, s in zip(values, in_browser, on_server, strict=True) if b != s] == [], field


def test_the_browser_and_the_server_agree_on_typed_emails(form: Any) -> None:
    in_browser = form.evaluate(THROUGH_THE_FORM, ["email", TYPED_EMAILS])
    on_server = [server_says("email", value) for value in TYPED_EMAILS]
    assert [(v, b, s) for v, b, s in zip(TYPED_EMAILS, in_browser, on_server, strict=True) if b != s] == []
