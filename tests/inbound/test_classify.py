"""Classification of non-bounce and hostile inputs."""

from __future__ import annotations

import os
import time

from mailflow.inbound.analysis import KINDS, analyze


def _mail(headers: str, body: bytes = b"hello\n") -> bytes:
    return headers.strip().encode("utf-8") + b"\n\n" + body


BASE = "From: Alice <alice@example.com>\nTo: hep@twport.com.tw\nMessage-ID: <m1@example.com>\n"


def test_autoreply_zh_tw_subject() -> None:
    raw = (
        BASE
        + "Subject: =?UTF-8?B?"
        + __import__("base64").b64encode("自動回覆: 您的申請".encode()).decode()
        + "?=\n"
    )
    assert analyze(_mail(raw)).kind == "autoreply"


def test_autoreply_headers() -> None:
    for extra in (
        "Auto-Submitted: auto-replied",
        "X-Autoreply: yes",
        "Precedence: auto_reply",
        "X-Autorespond: x",
    ):
        assert analyze(_mail(BASE + "Subject: hi\n" + extra)).kind == "autoreply", extra


def test_auto_submitted_no_is_a_person() -> None:
    a = analyze(_mail(BASE + "Subject: Re: hi\nAuto-Submitted: no\nIn-Reply-To: <x@y>"))
    assert a.kind == "reply"


def test_reply_with_in_reply_to() -> None:
    a = analyze(
        _mail(
            BASE
            + "Subject: question\nIn-Reply-To: <orig@twport.com.tw>\nReferences: <a@b> <orig@twport.com.tw>"
        )
    )
    assert a.kind == "reply"
    assert a.in_reply_to == ("orig@twport.com.tw", "a@b")
    assert a.message_id == "m1@example.com"
    assert a.text == "hello"


def test_plain_mail_is_other() -> None:
    a = analyze(_mail(BASE + "Subject: newsletter"))
    assert a.kind == "other" and a.quarantine_reason == ""


def test_mixed_charsets() -> None:
    big5 = "測試".encode("big5")
    gb = "测试".encode("gb2312")
    body = (
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n"
        b"Content-Type: text/plain; charset=big5\n\n" + big5 + b"\n--XX\n"
        b"Content-Type: text/plain; charset=gb2312\n\n" + gb + b"\n--XX\n"
        b"Content-Type: text/plain; charset=utf-8\n\n" + "回覆".encode() + b"\n--XX--\n"
    )
    raw = (
        BASE
        + "Subject: =?big5?B?"
        + __import__("base64").b64encode("回覆: 測試".encode("big5")).decode()
        + "?=\nIn-Reply-To: <o@x>\n"
    ).encode() + body
    a = analyze(raw)
    assert a.kind == "reply"
    assert "測試" in a.subject
    assert a.text == "測試"


def test_8bit_raw_headers() -> None:
    raw = (
        b"From: "
        + "王".encode()
        + b" <wang@example.com>\nSubject: "
        + "自動回覆".encode("big5")
        + b"\nMessage-ID: <z@x>\n\nbody\n"
    )
    a = analyze(raw)
    assert a.kind == "autoreply"  # Big5 for 自動回覆 in a raw header
    assert a.from_address == "wang@example.com"


def test_nested_rfc822_ten_deep() -> None:
    inner = _mail(BASE + "Subject: core")
    for i in range(10):
        inner = (
            f"From: l{i}@example.com\nSubject: wrap {i}\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
        ).encode() + inner
    assert analyze(inner).kind in KINDS


def test_huge_body_is_fast() -> None:
    raw = _mail(BASE + "Subject: big", b"x" * (50 * 1024 * 1024))
    start = time.perf_counter()
    a = analyze(raw)
    assert a.kind == "other"
    assert time.perf_counter() - start < 2.0


def test_empty_and_garbage() -> None:
    assert analyze(b"").kind == "other"
    assert analyze(b"").quarantine_reason
    for _ in range(20):
        assert analyze(os.urandom(2000)).kind in KINDS


def test_dsn_is_bounce_not_autoreply() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.org\nTo: bounce+abc.123@bounce.twport.com.tw\n"
        b"Subject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n"
        b"Content-Type: text/plain\n\nsorry\n--B\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; Bob@Example.org\nAction: failed\n"
        b"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: User unknown\n--B\n"
        b"Content-Type: message/rfc822\n\nReturn-Path: <bounce+abc.123@bounce.twport.com.tw>\n"
        b"Message-ID: <orig-1@twport.com.tw>\nSubject: x\n\nbody\n--B--\n"
    )
    a = analyze(raw)
    assert a.kind == "bounce"
    (r,) = a.recipients
    assert (r.address, r.reason, r.hard, r.status, r.reply_code) == (
        "bob@example.org",
        "userunknown",
        True,
        "5.1.1",
        "550",
    )
    assert a.returned_message_id == "orig-1@twport.com.tw"
    assert a.returned_return_path == "bounce+abc.123@bounce.twport.com.tw"


THIN_REPORT = (
    b"Return-Path: <MAILER-DAEMON@mx.example.org>\n"
    b"Subject: Utilisateur inconnu\n"
    b"To: sender@example.com\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n\n'
    b"--b1\nContent-Type: text/plain\n\nA message could not be delivered to:\nnobody@example.org\n"
    b"L'adresse n'existe pas.\n\n"
    b"--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
    b"--b1--\n"
)


def test_a_delivery_status_report_is_a_bounce_by_its_form() -> None:
    """RFC 6522: multipart/report; report-type=delivery-status is a delivery report whatever its From
    and Subject say; with no recipient fields in the report part, the notice text names the address."""
    result = analyze(THIN_REPORT)
    assert result.kind == "bounce"
    assert [r.address for r in result.recipients] == ["nobody@example.org"]
    other_report = THIN_REPORT.replace(b"=delivery-status", b"=disposition-notification")
    assert analyze(other_report).kind != "bounce"


def test_a_sentence_about_a_copy_of_the_message_is_not_the_returned_message() -> None:
    """"did NOT receive a copy of your message:" introduces the failed addresses; only a line that
    announces the copy (below / follows / attached) ends the notice."""
    body = (
        b"The attached message had PERMANENT fatal delivery errors!\n\n"
        b"The following addresses did NOT receive a copy of your message:\n\n"
        b"> gone@example.net\n\n"
        b"--- Session Transcript ---\n 550 5.1.1 <gone@example.net>... User unknown\n"
    )
    head = "From: MDaemon@mx.example.net\nSubject: Permanent Delivery Failure\nTo: a@example.com\n"
    mail = _mail(head, body)
    result = analyze(mail)
    assert result.kind == "bounce"
    assert [r.address for r in result.recipients] == ["gone@example.net"]


def test_a_megabyte_subject_is_read_only_to_its_cap() -> None:
    """A hostile header is cut before the classifier's patterns read it (RFC 5322: 998 a line)."""
    from mailflow.inbound.analysis import HEADER_CAP

    result = analyze(_mail(BASE + "Subject: " + "Q" * 900_000))
    assert result.kind == "other"
    assert result.subject == "Q" * HEADER_CAP


def test_a_report_of_a_hundred_thousand_blank_blocks_is_read_to_its_first_thousand() -> None:
    """Each blank line in a delivery-status part is a block of its own; a real report has one per
    recipient, so past dsn.MAX_BLOCKS the rest is not read (the recipient before them still is)."""
    from mailflow.inbound.bounce.dsn import MAX_BLOCKS

    head = (b"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
            b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n")
    block = b"Final-Recipient: rfc822; %s\nAction: failed\nStatus: 5.1.1\n\n"
    early = head + block % b"first@example.net" + b"\n" * 100_000 + block % b"late@example.net" + b"--b--\n"
    assert [r.address for r in analyze(early).recipients] == ["first@example.net"]
    within = head + b"\n" * (MAX_BLOCKS // 2) + block % b"late@example.net" + b"--b--\n"
    assert [r.address for r in analyze(within).recipients] == ["late@example.net"]
