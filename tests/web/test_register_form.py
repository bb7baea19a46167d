"""GET/POST /register: the zh-TW form, its help texts and errors, and the path without JavaScript
(a plain form post with the CSRF token, answered by a re-rendered form or the result page)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from mailflow.accounts.rules import MESSAGES
from mailflow.context import AppContext
from mailflow.models import Account, Application, OutboxMessage

PDF = b"%PDF-1.4\n%%EOF\n"
FORM = {
    "account": "harbour2024", "name": "林美麗", "mobile": "0987654321", "email": "mei@example.com.tw",
    "password": "Secret-Pass9", "password_confirm": "Secret-Pass9", "ubn": "10000308",
    "company_phone": "07-5219000", "company_name": "港都貨運股份有限公司",
    "company_address": "高雄市鼓山區蓬萊路10號", "company_owner": "林美麗",
}
SEED_ORDER = ["帳號資料", "帳號", "姓名", "手機電話", "Email", "密碼", "確認密碼",
              "公司資料", "公司統編", "公司電話", "公司名稱", "公司地址", "公司負責人", "公司證明文件"]


def csrf_from(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form carries a CSRF token"
    return found.group(1)


def submit(client: Any, token: str | None, document: bytes | None = PDF, follow: bool = True,
           **changes: str) -> Any:
    data = {**FORM, **changes}
    if token is not None:
        data["csrf_token"] = token
    files = {"document": ("company.pdf", document, "application/pdf")} if document is not None else None
    return client.post("/register", data=data, files=files, follow_redirects=follow)


def stored(ctx: AppContext) -> int:
    with ctx.db.session() as session:
        return sum(session.scalar(select(func.count()).select_from(t)) or 0
                   for t in (Account, Application, OutboxMessage))


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<span class="error" id="{field}-error" aria-live="polite">([^<]*)</span>', page)
    assert found, f"an error slot next to {field}"
    return html.unescape(found.group(1))


def input_value(page: str, field: str) -> str | None:
    found = re.search(rf'<input id="{field}" [^>]*?value="([^"]*)"', page, re.S)
    return html.unescape(found.group(1)) if found else None


def test_the_form_has_every_seed_field_in_order_with_help_and_error_slots(client: Any) -> None:
    page = client.get("/register")
    assert page.status_code == 200
    text = page.text
    labels = [re.search(rf"<(?:legend|label[^>]*)>{re.escape(name)}</", text) for name in SEED_ORDER]
    assert all(labels), [n for n, m in zip(SEED_ORDER, labels, strict=True) if not m]
    positions = [m.start() for m in labels if m]
    assert positions == sorted(positions)
    for field in [*FORM, "document"]:
        assert f'<label for="{field}"' in text
        assert f'aria-describedby="{field}-help {field}-error"' in text
        assert re.search(rf'<span class="help" id="{field}-help">[^<]{{8,}}</span>', text)
        assert f'id="{field}-error" aria-live="polite"' in text
    assert 'data-confirm="確定要送出申請?"' in text
    assert "只保留最後一次選擇的檔案" in text and "合併成一個檔案" in text
    assert '<script src="/static/register.js"' in text


def test_the_browser_gets_the_same_messages_as_the_server(client: Any) -> None:
    page = client.get("/register").text
    found = re.search(r'<script type="application/json" id="register-rules">(.*?)</script>', page, re.S)
    assert found
    rules = json.loads(found.group(1))
    assert rules["messages"] == MESSAGES
    assert rules["maxDocumentSize"] == "10 MB"
    script = client.get("/static/register.js")
    assert script.status_code == 200 and "window.confirm" in script.text


def test_a_good_form_shows_the_result_and_stores_the_application(client: Any, ctx: AppContext) -> None:
    token = csrf_from(client.get("/register").text)
    response = submit(client, token, follow=False)
    assert response.status_code == 303  # Post/Redirect/Get: F5 on the result page posts nothing
    done = response.headers["location"]
    assert done.startswith("/register/done?r=")
    for _ in range(2):
        page = client.get(done)
        assert page.status_code == 200
        assert "帳號資料已經成功送出,請收取Email!!" in page.text and "harbour2024" in page.text
    with ctx.db.session() as session:
        application = session.scalars(select(Application)).one()
        assert application.account.account == "harbour2024"
        assert session.scalars(select(OutboxMessage.template)).one() == "registration-received"


@pytest.mark.parametrize("signed", ["", "forged", "eyJhY2NvdW50IjoiZXZpbCJ9.x.y"])
def test_the_result_page_only_names_an_account_the_server_signed(client: Any, signed: str) -> None:
    page = client.get("/register/done", params={"r": signed}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/register"


def test_errors_re_render_the_form_with_values_kept_and_passwords_not_echoed(
    client: Any, ctx: AppContext
) -> None:
    token = csrf_from(client.get("/register").text)
    response = submit(client, token, mobile="12345", company_name='<b>"港都"</b>', ubn="12345678",
                      password="Weak-but-Long1x", password_confirm="Different-Pass1")
    assert response.status_code == 422
    page = response.text
    assert field_error(page, "mobile") == MESSAGES["mobile"]
    assert field_error(page, "ubn") == MESSAGES["ubn"]
    assert field_error(page, "password_confirm") == MESSAGES["password_confirm"]
    assert field_error(page, "name") == ""
    assert input_value(page, "mobile") == "12345"
    assert input_value(page, "company_name") == '<b>"港都"</b>'
    assert '<b>"港都"</b>' not in page  # kept, but escaped
    assert input_value(page, "account") == "harbour2024"
    assert "Weak-but-Long1x" not in page and "Different-Pass1" not in page
    assert input_value(page, "password") == "" and input_value(page, "password_confirm") == ""
    assert 'aria-invalid="true"' in page
    assert stored(ctx) == 0


def test_a_missing_document_is_named_next_to_the_file_input(client: Any, ctx: AppContext) -> None:
    token = csrf_from(client.get("/register").text)
    response = submit(client, token, document=None)
    assert response.status_code == 422
    assert field_error(response.text, "document") == MESSAGES["document"]
    assert stored(ctx) == 0


def test_a_taken_account_is_shown_next_to_the_account_field(client: Any, ctx: AppContext) -> None:
    token = csrf_from(client.get("/register").text)
    assert submit(client, token).status_code == 200
    response = submit(client, token, account="HARBOUR2024", ubn="04595257")
    assert response.status_code == 409
    assert field_error(response.text, "account") == "帳號已經存在"
    assert input_value(response.text, "account") == "HARBOUR2024"


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_post_without_a_valid_csrf_token_is_403_and_stores_nothing(client: Any, ctx: AppContext,
                                                                     token: str | None) -> None:
    client.get("/register")  # the CSRF cookie is set, but the form field is missing or wrong
    response = submit(client, token)
    assert response.status_code == 403
    assert "帳號資料已經成功送出" not in response.text
    assert stored(ctx) == 0


def test_a_token_without_its_cookie_is_403(client: Any, ctx: AppContext) -> None:
    token = csrf_from(client.get("/register").text)
    client.cookies.clear()
    assert submit(client, token).status_code == 403
    assert stored(ctx) == 0


def test_an_oversized_upload_through_the_form_is_413_with_the_message(client: Any, ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(storage={"max_document_bytes": 4096})
    token = csrf_from(client.get("/register").text)
    response = submit(client, token, document=PDF + b"x" * 5000)
    assert response.status_code == 413
    assert field_error(response.text, "document") == "公司證明文件不可超過4 KB"
    assert stored(ctx) == 0
