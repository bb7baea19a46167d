"""The support view of a received mail (issue 16 item 8, mail-parser where it serves): the words, the
attachments, the format problems and the Received chain, on the item page, as text never as HTML."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from mailflow.context import AppContext
from mailflow.support.received import MAX_PARSED_BYTES, received_view
from tests.factories import add_applicant, make_staff, sign_in
from tests.inbound.test_intake_helpers import items, sent_mail
from tests.inbound.test_route import receive

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4  # 1,033 bytes


def reply(message_id: str, *, html_only: bool = False, broken: bool = False) -> bytes:
    body = "我的 Email 打錯了 <script>alert(1)</script>,請改成 wang.new@example.com。"
    if html_only:
        part = ("Content-Type: text/html; charset=utf-8\r\n\r\n"
                f"<html><style>p{{color:red}}</style><p>{body.replace('<', '&lt;')}</p>"
                "<script>steal()</script></html>\r\n")
    else:
        part = ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.b64encode(body.encode()).decode() + "\r\n")
    close = "" if broken else "--XX--\r\n"
    return (
        "Received: from mx.example.com (mx.example.com [192.0.2.1]) by mx.twport.com.tw (Postfix)\r\n"
        " with ESMTPS id 4X for <hep@twport.com.tw>; Mon, 2 Mar 2026 10:00:31 +0800\r\n"
        "Received: from [10.0.0.5] by mx.example.com with ESMTP; Mon, 2 Mar 2026 10:00:01 +0800\r\n"
        "From: =?utf-8?b?546L5bCP5piO?= <wang@example.com>\r\nTo: hep@twport.com.tw\r\n"
        f"Subject: Re: account\r\nIn-Reply-To: {message_id}\r\nMessage-ID: <r1@example.com>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        f"--XX\r\n{part}--XX\r\n"
        'Content-Type: application/pdf; name="登記表.pdf"\r\n'
        "Content-Disposition: attachment; filename*=utf-8''%E7%99%BB%E8%A8%98%E8%A1%A8.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF).decode().replace("\n", "\r\n")
        + close
    ).encode()


def test_the_words_attachments_and_the_way_the_mail_came() -> None:
    view = received_view(reply("<m@twport.com.tw>"))
    assert "我的 Email 打錯了 <script>alert(1)</script>" in view.text and not view.from_html
    assert [(a.filename, a.content_type, a.size) for a in view.attachments] == [
        ("登記表.pdf", "application/pdf", len(PDF))]
    assert view.defects == []
    assert [(h.number, h.sender, h.protocol) for h in view.hops] == [
        (1, "[10.0.0.5]", "ESMTP"), (2, "mx.example.com (mx.example.com [192.0.2.1])", "ESMTPS")]
    assert view.hops[0].at == "民國115年3月2日 10:00" and view.hops[1].delay_seconds == 30


def test_an_html_only_mail_shows_its_text_and_a_broken_one_says_what_is_wrong() -> None:
    html = received_view(reply("<m@twport.com.tw>", html_only=True))
    assert html.from_html and "我的 Email 打錯了 <script>alert(1)</script>" in html.text
    assert "steal()" not in html.text and "color:red" not in html.text
    broken = received_view(reply("<m@twport.com.tw>", broken=True))
    assert [d.code for d in broken.defects] == ["CloseBoundaryNotFoundDefect"]
    assert broken.defects[0].label == "多部分郵件缺少結束的分隔線"


def test_garbage_and_giants_do_not_break_the_page() -> None:
    garbage = (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed\r\n\r\n--", b"Received: ;;;\r\n\r\nx")
    for raw in garbage:
        view = received_view(raw)
        assert view.unreadable or isinstance(view.text, str)
    assert received_view(b"x" * (MAX_PARSED_BYTES + 1)).too_large


def test_the_item_page_shows_the_received_mail_as_text(ctx: AppContext, client: TestClient) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    receive(ctx, reply(mail.message_id, broken=True))
    with ctx.db.session() as session:
        staff = make_staff(session)
        [item] = items(session)
    sign_in(client, ctx.settings, staff)
    page = client.get(f"/support/items/{item.id}").text
    assert "收到的郵件內容" in page
    assert "我的 Email 打錯了 &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "登記表.pdf" in page and f"{len(PDF)} 位元組" in page
    assert '<span title="代碼:CloseBoundaryNotFoundDefect">多部分郵件缺少結束的分隔線</span>' in page
    assert "傳遞路徑(Received,共 2 站)" in page and "延遲 30 秒" in page
