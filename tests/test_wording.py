"""One way to write each thing (issue 15 item 13): the house punctuation of README's 'Wording' section in
every page, mail and zh-TW message; the seed's quoted sentences exactly as the seed writes them; the
support hours rendered one way (the seed's 8:00~18:00) wherever they appear."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailflow.config import Settings
from mailflow.mail import TEMPLATE_NAMES
from mailflow.mail.render import display_hours, render_parts, sample_context

ROOT = Path(__file__).resolve().parents[1]
# Full-width forms the house style writes half-width. 。 「」 、 ; stay full-width.
FULL_WIDTH = re.compile("[，：？！（）]")
CJK = re.compile(r"[\u3400-\u9fff]")
# Code that reads other people's text (bounces, replies, typed phone numbers) matches their punctuation.
READERS = ("inbound/", "accounts/phones.py")
SEED_QUOTES = ("確定要送出申請?", "帳號資料已經成功送出,請收取Email!!", "帳號已經存在",
               "此mail為系統發送通知,請勿回覆,若有問題請於8:00~18:00洽客服專線:0809-088-568免付費,客服將儘快為您服務")


def zh_strings_in_the_code() -> list[tuple[str, str]]:
    found = []
    for path in (ROOT / "mailflow").rglob("*.py"):
        where = str(path.relative_to(ROOT / "mailflow"))
        if where.startswith(READERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value):
                found.append((where, node.value))
    return found


def test_pages_mails_and_messages_use_the_house_punctuation() -> None:
    texts = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
             for p in (ROOT / "templates").rglob("*") if p.is_file() and p.suffix in (".html", ".txt")]
    texts += zh_strings_in_the_code()
    assert len(texts) > 100  # the scan sees them
    assert [(where, text[:60]) for where, text in texts if FULL_WIDTH.search(text)] == []


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_every_mail_keeps_the_seed_footer_word_for_word(settings: Settings, template: str) -> None:
    parts = render_parts(settings, template, sample_context(template, settings))
    if template != "support-digest":  # customer service reads the digest: no service line there
        assert SEED_QUOTES[3] in parts.text


def test_the_seed_quotes_are_written_as_the_seed_writes_them(client: TestClient) -> None:
    register = client.get("/register").text
    assert SEED_QUOTES[0] in register
    from mailflow.accounts.rules import MESSAGES
    from mailflow.web.applicant import SUCCESS_TEXT

    assert SEED_QUOTES[1] == SUCCESS_TEXT and MESSAGES["account_taken"] == SEED_QUOTES[2]


def test_the_support_hours_are_one_setting_rendered_one_way(client: TestClient, settings: Settings) -> None:
    assert settings.mail.support_hours == "08:00-18:00"  # the key and format CONTRACT.md names
    assert display_hours("08:00-18:00") == "8:00~18:00" and display_hours("09:30-17:30") == "9:30~17:30"
    page = client.get("/register").text
    assert "8:00~18:00" in page and "08:00" not in page
    for where, text in zh_strings_in_the_code():
        assert "08:00~" not in text and "8:00-18:00" not in text, where
