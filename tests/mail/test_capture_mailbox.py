"""Capture mode: dispatch sends over real SMTP to the embedded server, and /dev/mailbox shows what came."""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from email.policy import default

import pytest
from fastapi.testclient import TestClient

from mailflow.context import AppContext
from mailflow.mail.capture import CaptureServer, start_capture_server
from mailflow.mail.dispatch import run_dispatch
from mailflow.models import CapturedMail
from mailflow.web.app import create_app
from tests.mail.helpers import queue_mail


@pytest.fixture
def capture(ctx: AppContext) -> Iterator[CaptureServer]:
    server = start_capture_server(ctx)
    yield server
    server.stop()


def test_capture_binds_a_free_port_and_dispatch_uses_it(ctx: AppContext, capture: CaptureServer) -> None:
    # The port lives on the context; the settings stay as loaded (frozen, smtp.port 0 = pick one).
    assert ctx.capture_port == ctx.smtp_port() == capture.port != 0
    assert ctx.settings.smtp.port == 0
    queue_mail(ctx, "wang@example.com", template="account-approved")
    assert run_dispatch(ctx, threading.Event()).results == {"sent": 1}
    with ctx.db.session() as session:
        [row] = session.query(CapturedMail).all()
        assert row.rcpt_tos == ["wang@example.com"]
        assert row.mail_from.startswith("bounce+")
        assert row.subject == "通行證系統帳號註冊通知信件(審核通過,請完成Email驗證)"
        assert row.message_id.endswith("@twport.com.tw>")
        # As a mailbox stores it: the envelope sender (the signed bounce address) as Return-Path on top.
        assert row.raw.startswith(f"Return-Path: <{row.mail_from}>\r\n".encode())
        parsed = email.message_from_bytes(row.raw, policy=default)
        assert parsed["Return-Path"] == f"<{row.mail_from}>" and parsed["Message-ID"] == row.message_id


def test_the_mailbox_api_gives_parts_and_links(ctx: AppContext, capture: CaptureServer,
                                               client: TestClient) -> None:
    queue_mail(ctx, "first@example.com")
    queue_mail(ctx, "wang@example.com", template="account-approved")
    run_dispatch(ctx, threading.Event())
    messages = client.get("/dev/mailbox/api/messages").json()
    assert [m["rcpt_tos"] for m in messages] == [["wang@example.com"], ["first@example.com"]]  # newest first
    newest = messages[0]
    assert newest["to"] == "王小明 <wang@example.com>"
    assert newest["from"] == "港區通行證通用管理系統工作小組 <hep@twport.com.tw>"
    assert newest["links"] == ["http://testserver/verify/sample-token"]
    assert "請點擊下面的連結完成Email驗證" in newest["text"]
    assert 'href="http://testserver/verify/sample-token"' in newest["html"]
    assert set(newest) >= {"id", "received_at", "subject", "message_id", "text", "html", "links"}
    only = client.get("/dev/mailbox/api/messages", params={"to": "FIRST@example.com"}).json()
    assert [m["rcpt_tos"] for m in only] == [["first@example.com"]]
    one = client.get(f"/dev/mailbox/api/messages/{newest['id']}").json()
    assert one["raw"].startswith("From: ") or "Message-ID" in one["raw"]


def test_the_mailbox_page_renders_each_mail_safely(ctx: AppContext, capture: CaptureServer,
                                                   client: TestClient) -> None:
    queue_mail(ctx, "wang@example.com", name="<script>alert(1)</script>")
    run_dispatch(ctx, threading.Event())
    mail_id = client.get("/dev/mailbox/api/messages").json()[0]["id"]
    page = client.get("/dev/mailbox")
    assert page.status_code == 200
    assert "通行證系統帳號註冊通知信件" in page.text
    # sandboxed with nothing allowed but reading its height (scripts stay off: see MAIL_HTML_CSP)
    frame = f'<iframe class="mail-html" sandbox="allow-same-origin" src="/dev/mailbox/{mail_id}/html"'
    assert frame in page.text
    assert "<script>alert(1)</script>" not in page.text
    html = client.get(f"/dev/mailbox/{mail_id}/html")
    assert "sandbox allow-same-origin" in html.headers["content-security-policy"]
    assert "allow-scripts" not in html.headers["content-security-policy"]
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "感謝您在通行證系統上註冊了一個新帳號" in html.text
    assert client.get(f"/dev/mailbox/{mail_id}/raw").text.count("Message-ID:") == 1
    assert client.get(f"/dev/mailbox/{mail_id}").status_code == 200


def test_bad_requests_get_clear_answers(client: TestClient) -> None:
    assert client.get("/dev/mailbox/999").status_code == 404
    assert client.get("/dev/mailbox/999/html").status_code == 404
    assert client.get("/dev/mailbox/api/messages/999").status_code == 404
    assert client.get("/dev/mailbox/api/messages", params={"limit": 0}).status_code == 422
    assert client.get("/dev/mailbox", params={"page": "x"}).status_code == 422
    assert client.get("/dev/mailbox").status_code == 200  # empty is fine
    assert client.get("/dev/mailbox/api/messages").json() == []


def test_a_broken_captured_mail_still_shows(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        session.add(CapturedMail(mail_from="x@y", rcpt_tos=["a@b"], raw=b"\xff\xfe garbage\r\n\r\n\x00body"))
    assert client.get("/dev/mailbox").status_code == 200
    assert client.get("/dev/mailbox/api/messages").json()[0]["rcpt_tos"] == ["a@b"]


def test_relay_mode_has_no_mailbox(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(smtp={"mode": "relay"})
    with TestClient(create_app(ctx)) as relay_client:
        assert relay_client.get("/dev/mailbox").status_code == 404
        assert relay_client.get("/dev/mailbox/api/messages").status_code == 404
