"""Staff screens show zh-TW words, never internal codes (issue 15 item 9): every audit action the code can
write has its label, actors read as people, suppression reasons and bounce reasons as sentences, and a
mail that bounced for good is not 已寄出. The codes stay in tooltips (title) and in the CSV."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import Account, OutboxStatus
from mailflow.web.labels import ACTION_LABELS, actor_label, mail_status_label, suppression_reason_label
from tests.factories import make_applicant, make_bounce_item, make_mail, make_staff, sign_in

MAILFLOW = Path(__file__).resolve().parents[2] / "mailflow"


def audit_actions_in_the_code() -> set[str]:
    """The action of every audit.record(session, actor, "action", ...) call under mailflow/."""
    found: set[str] = set()
    for path in MAILFLOW.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "record" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "audit" and len(node.args) >= 3
                    and isinstance(node.args[2], ast.Constant) and isinstance(node.args[2].value, str)):
                found.add(node.args[2].value)
    return found


def test_every_audit_action_the_code_writes_has_a_zh_tw_label() -> None:
    actions = audit_actions_in_the_code()
    assert len(actions) > 20  # the scan finds them (it would pass vacuously otherwise)
    assert sorted(actions - set(ACTION_LABELS)) == []
    assert all(not label.isascii() for label in ACTION_LABELS.values())


@pytest.mark.parametrize(("code", "label"), [
    ("staff:huang.reviewer", "工作人員 huang.reviewer"), ("cli:root", "命令列(root)"), ("system", "系統"),
    ("applicant:example1234", "申請人 example1234"), ("account:99", "申請人(帳號編號 99)"),
])
def test_actors_read_as_people(code: str, label: str) -> None:
    assert actor_label(code) == label


def test_an_actor_that_is_the_pages_account_is_named_by_its_id() -> None:
    account = Account(id=7, account="harbor01")
    assert actor_label("account:7", account) == "申請人 harbor01"


@pytest.mark.parametrize(("code", "label"), [("hard_bounce", "永久退信"), ("userunknown", "收件人信箱不存在"),
                                             ("complaint", "垃圾郵件檢舉"), ("manual", "人工加入")])
def test_suppression_reasons_read_as_words(code: str, label: str) -> None:
    assert suppression_reason_label(code) == label


def test_a_bounced_mail_is_not_sent() -> None:
    assert mail_status_label(OutboxStatus.SENT) == "已寄出"
    assert mail_status_label(OutboxStatus.SENT, "bounced") == "已退信(無法送達)"
    assert "未證實" in mail_status_label(OutboxStatus.SENT, "unproven")
    assert mail_status_label(OutboxStatus.SUPPRESSED) == "停止寄送(未寄出)"


def visible_text(page: str) -> str:
    """What a person reads: tags and their attributes (tooltips included) removed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


CODES = re.compile(r"\b(?:hard_bounce|userunknown|support_item_\w+|email_undeliverable|address_suppressed|"
                   r"application\.\w+|staff:\S+|cli:\S+|account:\d+)\b")


def test_the_support_pages_show_labels_and_keep_codes_in_tooltips(ctx: AppContext, client: TestClient,
                                                                  settings: Settings) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        mail = make_mail(session, acc)  # 已寄出 by the relay, then it bounced: user unknown
        item = make_bounce_item(session, acc, app, mail)
        suppression.suppress(session, acc.email, "hard_bounce", "550 5.1.1", actor="system")
        acc.email_undeliverable = True
        staff = make_staff(session)
        item_id, account_id = item.id, acc.id
    sign_in(client, settings, staff)
    client.post(f"/support/items/{item_id}/assign", data={"csrf_token": csrf(client, item_id)})
    for path in (f"/support/items/{item_id}", f"/support/accounts/{account_id}"):
        page = client.get(path).text
        assert CODES.findall(visible_text(page)) == [], path
        assert "已退信(無法送達)" in page and "永久退信" in page
        assert 'title="hard_bounce"' in page  # the code is still there for whoever needs it
    item_page = client.get(f"/support/items/{item_id}").text
    assert "工作人員 chen" in visible_text(item_page) and "指派客服項目" in visible_text(item_page)
    assert 'title="代碼:userunknown"' in item_page
    csv = client.get("/support/export.csv", params={"state": "all"}).text
    assert "userunknown" in csv  # the CSV keeps the codes


def csrf(client: TestClient, item_id: int) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/support/items/{item_id}").text)
    assert found
    return found.group(1)
