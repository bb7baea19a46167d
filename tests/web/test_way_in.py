"""No dead ends (issue 15 item 7): the zh-TW start page at /, a zh-TW page for an unknown address (JSON
{"error"} under /api), the favicon, the login's links onward, a finished verification that leads to the
login, and login refusals that say what to do next. Staff pages carry no customer-service phone line."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from mailflow.accounts.login import MSG_PENDING, MSG_REJECTED, MSG_UNVERIFIED
from mailflow.context import AppContext
from mailflow.models import StaffRole
from tests.factories import PASSWORD, add_account, add_staff, staff_login
from tests.web.test_verify import csrf, mail_link


def links(page: str) -> dict[str, str]:
    """Visible link text -> href."""
    return {re.sub(r"<[^>]+>", "", text).strip(): href
            for href, text in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', page, re.S)}


def test_the_start_page_offers_the_three_ways_in(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-Hant-TW">' in page.text
    found = links(page.text)
    assert found["申請一般帳號"] == "/register"
    assert found["申請共用帳號"] == "/shared/register"
    assert found["登入"] == "/account"
    for path in ("/register", "/shared/register", "/account"):
        assert client.get(path).status_code in (200, 401)  # the login form answers 401 until signed in


@pytest.mark.parametrize("path", ["/nowhere", "/register/extra", "/static/missing.css", "/review/x/y/z"])
def test_an_unknown_page_is_a_zh_tw_404_page_with_the_way_back(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "找不到此頁面" in page.text and links(page.text)["回到首頁"] == "/"
    assert "Not Found" not in page.text and "detail" not in page.text


@pytest.mark.parametrize("path", ["/api/nowhere", "/api/applications/1/x",
                                  "/dev/mailbox/api/messages/999999"])
def test_an_unknown_api_address_stays_json(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    body = answer.json()
    assert list(body) == ["error"] and not body["error"].isascii()


def test_a_wrong_method_or_malformed_page_address_is_a_zh_tw_page(client: TestClient) -> None:
    wrong = client.delete("/register")
    assert wrong.status_code == 405 and "無法以此方式開啟此頁面" in wrong.text
    assert client.delete("/api/applications").json() == {"error": "此 API 不接受這個 HTTP 方法"}
    bad = client.get("/dev/mailbox", params={"page": "abc"})
    assert bad.status_code == 422 and "資料格式不正確" in bad.text and "detail" not in bad.text


def test_the_favicon_is_an_icon_every_page_names(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
    assert icon.content.count(b"\x89PNG") == 2  # 16 and 32 px
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/").text


def test_the_login_links_to_register_resend_and_forgotten_password(client: TestClient) -> None:
    found = links(client.get("/account").text)
    assert found["申請帳號"] == "/register"
    assert found["申請共用帳號"] == "/shared/register"
    assert found["重新寄送驗證信"] == "/verify/resend"
    assert found["忘記密碼"] == "/password/forgot"


def test_a_refused_login_says_what_to_do_next(ctx: AppContext, client: TestClient) -> None:
    for message in (MSG_PENDING, MSG_UNVERIFIED, MSG_REJECTED):
        assert "," in message and message.endswith("。")  # the state, then what to do about it
    add_account(ctx)
    token = csrf(client, "/account")
    page = client.post("/account/login", data={"account": "example1234", "password": PASSWORD,
                                               "csrf_token": token})
    assert page.status_code == 403 and MSG_UNVERIFIED in page.text
    # the way to a new verification mail is right there, with the account already filled in
    assert links(page.text)["重新寄送驗證信"] == "/verify/resend?account=example1234"
    assert 'value="example1234"' in client.get("/verify/resend?account=example1234").text


def test_a_finished_verification_leads_to_the_login(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    done = client.post(link, data={"password": PASSWORD})
    assert done.status_code == 200 and "驗證完成" in done.text
    assert links(done.text)["前往登入"] == "/account"


def test_staff_pages_carry_no_service_phone_line(ctx: AppContext, client: TestClient) -> None:
    assert "0809-088-568" in client.get("/register").text  # applicants' pages keep it
    assert "0809-088-568" not in client.get("/staff/login").text
    add_staff(ctx, "support01", StaffRole.SUPPORT)
    assert staff_login(client, "support01").status_code == 303
    page = client.get("/support")
    assert page.status_code == 200 and "0809-088-568" not in page.text and "工作人員專用" in page.text
