"""Every mail template rendered into a real message: exact headers, both parts, the seed's wording."""

from __future__ import annotations

import base64
import email
import html as htmllib
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from mailflow.config import Settings
from mailflow.mail.render import Envelope, RenderError, display_hours, render_bytes, sample_context

FOOTER = ("此mail為系統發送通知,請勿回覆,若有問題請於8:00~18:00洽客服專線:0809-088-568免付費,"
          "客服將儘快為您服務")
SUBJECTS = {
    "registration-received": "通行證系統帳號註冊通知信件",
    "account-approved": "通行證系統帳號註冊通知信件(審核通過,請完成Email驗證)",
    "account-rejected": "通行證系統帳號註冊通知信件(帳號未審核通過)",
    "document-approved": "通行證系統公司文件審核通知信件",
    "document-rejected": "通行證系統公司文件審核通知信件(未通過)",
    "verify-reminder": "通行證系統Email驗證提醒",
    "binding-request": "通行證系統共用帳號綁定確認通知",
    "support-digest": "通行證系統客服每日摘要",
    "password-reset": "通行證系統重設密碼通知信件",
    "password-changed": "通行證系統密碼變更通知",
    "account-reminder": "通行證系統帳號查詢通知",
    "email-change": "通行證系統變更Email確認信件",
    "email-changed": "通行證系統Email變更通知",
    "pass-issued": "通行證核發通知",
    "pass-expiring": "通行證即將到期",
}
# Mails whose reader is staff, not an applicant.
STAFF_TEMPLATES = {"support-digest"}
HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted",
           "X-Auto-Response-Suppress", "Content-Type"]


def render(settings: Settings, template: str, name: str = "王小明", to: str = "wang@example.com",
           context: dict[str, object] | None = None) -> tuple[bytes, EmailMessage]:
    values = context or sample_context(template, settings)
    envelope = Envelope(template, to, name, "<m1@twport.com.tw>", values)
    raw = render_bytes(settings, envelope)
    parsed: EmailMessage = email.message_from_bytes(raw, policy=default)
    return raw, parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize("template", sorted(SUBJECTS))
def test_every_template_builds_a_correct_message(settings: Settings, template: str) -> None:
    raw, message = render(settings, template)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # CJK only as RFC 2047 words
    assert b"\n" not in head.replace(b"\r\n", b"")  # CRLF line ends only
    assert list(message.keys()) == HEADERS
    assert message["From"] == "港區通行證通用管理系統工作小組 <hep@twport.com.tw>"
    assert message["To"] == "王小明 <wang@example.com>"
    assert message["Subject"].startswith(SUBJECTS[template])
    assert message["Message-ID"] == "<m1@twport.com.tw>"
    assert message["Date"].endswith("+0800")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    kinds = [(p.get_content_type(), p.get_content_charset()) for p in message.iter_parts()]
    assert kinds == [("text/plain", "utf-8"), ("text/html", "utf-8")]
    text, html = parts(message)
    if template in STAFF_TEMPLATES:
        # Customer service reads it: not told to phone itself, but every mail carries the support line and
        # hours (the contract), here as the line applicants are given.
        staff_footer = ("此mail為系統每日寄給客服的摘要,請勿直接回覆。"
                        "申請人的客服專線:0809-088-568免付費,服務時間8:00~18:00")
        assert text.rstrip().endswith(staff_footer) and staff_footer in html
        assert "若有問題" not in text and "若有問題" not in html
    else:
        assert text.rstrip().endswith(FOOTER)
        assert FOOTER in html
    assert "{{" not in text and "{{" not in html


def test_the_seed_sentences_are_there(settings: Settings) -> None:
    text, html = parts(render(settings, "registration-received")[1])
    assert "感謝您在通行證系統上註冊了一個新帳號" in text
    assert "待審核後,系統會再寄出審核結果至您的電子郵件地址" in text
    assert "收到此通知信,僅表示您的帳號申請已成功送出(還無法做登入使用)" in html
    text, html = parts(render(settings, "document-approved")[1])
    assert text.startswith("臺灣港務股份有限公司基隆分公司 您好:")
    assert ("您的公司證明文件,已通過港區通行證通用管理系統審核,您可至系統(https://hep.twport.com.tw/twportpass/)"
            "進行請領相關作業。") in text
    assert "通過說明:文件清晰完整。" in text and "通過說明:文件清晰完整。" in html
    text, html = parts(render(settings, "account-rejected")[1])
    assert "未通過原因如下" in text
    assert "1. 「營利事業登記證」自98年4月13日起停止使用,不再作為證明文件" in text
    assert "<li>「營利事業登記證」自98年4月13日起停止使用" in html
    for template in ("account-approved", "verify-reminder"):
        text, html = parts(render(settings, template)[1])
        assert "http://testserver/verify/sample-token" in text
        assert 'href="http://testserver/verify/sample-token"' in html
        assert "驗證信不可轉寄至其他信箱做驗證" in text
    text, html = parts(render(settings, "binding-request")[1])
    assert 'href="http://testserver/verify/sample-binding-token"' in html


@pytest.mark.parametrize("template", sorted(SUBJECTS))
def test_each_link_is_in_the_html_at_most_twice(settings: Settings, template: str) -> None:
    """A button and the address written out is enough; a third copy (the written-out address made a
    link too) is what spam filters count against a mail whose text part has the link once
    (rspamd URI_COUNT_ODD)."""
    text, html = parts(render(settings, template)[1])
    unescaped = htmllib.unescape(html)
    for url in set(re.findall(r"https?://[^\s<>\"')]+", text)):
        assert f'href="{url}"' in unescaped, url
        assert 1 <= unescaped.count(url) <= 2, (url, unescaped.count(url))


def test_user_data_is_escaped_in_html_and_kept_in_text(settings: Settings) -> None:
    context = {**sample_context("registration-received", settings), "company_name": "<b>A&B</b> 公司"}
    text, html = parts(render(settings, "registration-received", context=context)[1])
    assert "<b>A&B</b> 公司" in text
    assert "&lt;b&gt;A&amp;B&lt;/b&gt; 公司" in html and "<b>A&B" not in html


@pytest.mark.parametrize("name", ["王小明\r\nBcc: evil@example.net", "x\nSubject: spoof", "a\rb\x00c"])
def test_a_name_with_line_breaks_cannot_add_a_header(settings: Settings, name: str) -> None:
    raw, message = render(settings, "registration-received", name=name)
    assert message.get_all("Bcc") is None
    assert len(message.get_all("Subject") or []) == 1
    assert len(message.get_all("To") or []) == 1
    assert message["To"].addresses[0].addr_spec == "wang@example.com"
    assert b"evil@example.net>" not in raw and b"\r\nSubject: spoof" not in raw


def test_an_unusable_address_or_template_is_a_render_error(settings: Settings) -> None:
    with pytest.raises(RenderError):
        render(settings, "registration-received", to="not an address")
    with pytest.raises(RenderError):
        render(settings, "../web/base", context={})


def test_reply_to_only_when_configured(settings: Settings) -> None:
    assert render(settings, "registration-received")[1]["Reply-To"] is None
    settings = settings.updated(mail={"reply_address": "hep-support@twport.com.tw"})
    assert render(settings, "registration-received")[1]["Reply-To"] == "hep-support@twport.com.tw"


def test_support_hours_read_like_the_seed() -> None:
    assert display_hours("08:00-18:00") == "8:00~18:00"
    assert display_hours("09:30-17:30") == "9:30~17:30"
    assert display_hours("10:00-20:00") == "10:00~20:00"


def test_dkim_signature_verifies_with_the_published_key(dkim_signed: Signed) -> None:
    import dkim

    raw, dns, asked = dkim_signed
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"mf2026._domainkey.twport.com.tw."]
    tampered = raw.replace(b"Auto-Submitted: auto-generated", b"Auto-Submitted: no")
    assert not dkim.verify(tampered, dnsfunc=dns)
    signature = parsed_signature(raw)
    assert signature["c"] == "relaxed/relaxed"
    signed = signature["h"].lower().split(":")
    assert signed.count("from") == 2 and signed.count("subject") == 2


def parsed_signature(raw: bytes) -> dict[str, str]:
    message = email.message_from_bytes(raw, policy=default)
    text = "".join(str(message["DKIM-Signature"]).split())
    return dict(tag.split("=", 1) for tag in text.split(";") if tag)


Dns = Callable[..., bytes]
Signed = tuple[bytes, Dns, list[bytes]]


@pytest.fixture
def dkim_signed(settings: Settings, tmp_path: Path) -> Signed:
    """A signed account-approved mail, a DNS answer holding its public key, the names it was asked."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record if name == b"mf2026._domainkey.twport.com.tw." else b""

    settings = settings.updated(mail={"dkim_key": str(tmp_path / "dkim.pem"), "dkim_selector": "mf2026"})
    return render(settings, "account-approved")[0], dns, asked


@pytest.mark.parametrize("added", [
    b"From: =?utf-8?b?5riv5Y2A?= <hep@twport-login.example>\r\n",
    b"Subject: =?utf-8?b?6KuL56uL5Y2z55m75YWl?=\r\n",
])
def test_a_from_or_subject_added_on_top_breaks_the_signature(dkim_signed: Signed, added: bytes) -> None:
    import dkim

    raw, dns, _ = dkim_signed
    assert dkim.verify(raw, dnsfunc=dns)
    # A second header of the name just below the signature: the one most readers show.
    cut = raw.index(b"\r\nFrom: ") + 2
    assert not dkim.verify(raw[:cut] + added + raw[cut:], dnsfunc=dns)
    # and above the signature too
    assert not dkim.verify(added + raw, dnsfunc=dns)


def test_relaxed_canonicalization_survives_a_relay_refolding_whitespace(dkim_signed: Signed) -> None:
    import dkim

    raw, dns, _ = dkim_signed
    head, _, body = raw.partition(b"\r\n\r\n")
    # What some relays do in transit: a header's inner spaces doubled and blanks at body line ends.
    refolded = head.replace(b"Auto-Submitted: auto-generated", b"Auto-Submitted:  auto-generated")
    padded = body.replace(b"\r\n", b" \r\n", 3)
    assert dkim.verify(refolded + b"\r\n\r\n" + padded, dnsfunc=dns)


def test_an_edited_template_shows_in_the_next_mails(settings: Settings, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import shutil

    from mailflow.mail import render as render_module
    from mailflow.paths import templates_dir

    shutil.copytree(templates_dir(), tmp_path / "templates")
    monkeypatch.setenv("MAILFLOW_TEMPLATES_DIR", str(tmp_path / "templates"))
    monkeypatch.setattr(render_module, "FRESHNESS_SECONDS", 0.0)  # check on every render
    assert parts(render(settings, "registration-received")[1])[0].startswith("您好:")
    body = tmp_path / "templates" / "registration-received" / "body.txt"
    body.write_text("改過的內容 {{ name }}\n", encoding="utf-8")
    os.utime(body, (body.stat().st_atime, body.stat().st_mtime + 5))  # a newer time, whatever the clock
    assert parts(render(settings, "registration-received")[1])[0] == "改過的內容 王小明\r\n"


@pytest.mark.parametrize("template", ["account-approved", "verify-reminder"])
def test_a_shared_accounts_verification_mails_say_nothing_was_reviewed(settings: Settings,
                                                                      template: str) -> None:
    """A 共用帳號 is never reviewed: its verification mails have their own subject and wording."""
    general = render(settings, template, context={**sample_context(template, settings), "kind": "general"})[1]
    shared = render(settings, template, context={**sample_context(template, settings), "kind": "shared"})[1]
    assert "審核通過" in parts(general)[0]
    for part in parts(shared):
        assert "審核通過" not in part and "共用帳號" in part and "example1234" in part
        assert "sample-token" in part  # the link is there all the same
    if template == "account-approved":
        assert general["Subject"] == SUBJECTS[template]
        assert shared["Subject"] == "通行證系統共用帳號註冊通知信件(請完成Email驗證)"
