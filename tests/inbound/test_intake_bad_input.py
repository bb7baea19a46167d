"""Any byte sequence as a mail is stored exactly and ends processed or quarantined; nothing stops
the intake."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.inbound.importer import import_path
from mailflow.inbound.store import header_end, header_message_id, store_mail
from mailflow.models import InboundMessage, InboundStatus
from mailflow.models.ops import SupportKind
from tests.factories import add_applicant
from tests.inbound.test_intake_helpers import dsn, items, reply, sent_mail, suppressed

FINAL = (InboundStatus.PROCESSED, InboundStatus.QUARANTINED)


def intake(ctx: AppContext, raw: bytes) -> InboundMessage:
    stored = store_mail(ctx.db, raw, "import", "test")
    assert route.process(ctx, stored.id) in FINAL
    with ctx.db.session() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        return row


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=0, max_size=3000))
def test_any_bytes_are_stored_exactly_and_reach_a_final_state(ctx: AppContext, raw: bytes) -> None:
    row = intake(ctx, raw)
    assert row.raw == raw and row.sha256 == hashlib.sha256(raw).hexdigest() and row.size == len(raw)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=2000), noise=st.binary(min_size=1, max_size=40),
       at=st.integers(min_value=0, max_value=2000))
def test_mutated_bounces_never_stop_the_pipeline(ctx: AppContext, cut: int, noise: bytes, at: int) -> None:
    tag = uuid.uuid4().hex[:12]
    who = add_applicant(ctx, account=tag, email=f"{tag}@example.com")
    mail = sent_mail(ctx, who)
    raw = dsn(ctx.settings, mail)
    mutated = raw[:at] + noise + raw[at:][: max(0, len(raw) - cut)]
    assert intake(ctx, mutated).status in FINAL


def test_broken_mime_and_mixed_charsets(ctx: AppContext) -> None:
    broken = (b"From: x@example.com\r\nSubject: \xb4\xfa\xb8\xd5 \xe6\xb5\x8b\xe8\xaf\x95\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"nope\r\n\r\n"
              b"--nope\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n")
    mixed = (
        b"From: =?big5?b?pP2kcA==?= <a@example.com>\r\nSubject: =?gb2312?b?suLK1A==?= \xe6\xb8\xac\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain; charset=big5\r\n\r\n\xb4\xfa\xb8\xd5\r\n"
        b"--B\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n\xb2\xe2\xca\xd4\r\n"
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe6\xb8\xac\xe8\xa9\xa6\r\n"
        b"--B\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe\r\n--B--\r\n"
    )
    for raw in (broken, mixed, b"\r\n\r\n", b"Subject: only a header", b"\x00" * 100):
        intake(ctx, raw)


def test_nul_characters_in_a_reply_do_not_cost_the_reply(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    raw = reply(who.email, "請問\x00進度", subject="Re: 帳號\x00審核")
    row = intake(ctx, raw)
    assert row.status == InboundStatus.PROCESSED and row.subject == "Re: 帳號審核"
    with ctx.db.session() as session:
        [item] = items(session)
        assert item.summary == "請問進度"


def nested(depth: int) -> bytes:
    inner = b"From: deep@example.com\r\nSubject: bottom\r\n\r\nthe bottom\r\n"
    for level in range(depth):
        inner = (f"From: level{level}@example.com\r\nSubject: level {level}\r\nMIME-Version: 1.0\r\n"
                 f"Content-Type: message/rfc822\r\n\r\n").encode() + inner
    return inner


def test_ten_deep_nested_messages(ctx: AppContext) -> None:
    assert intake(ctx, nested(10)).raw == nested(10)


def test_one_bad_mail_does_not_stop_the_next(ctx: AppContext, tmp_path: Path) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "1-bad.eml").write_bytes(b"\r\n \r\n")  # nothing to understand: quarantined
    (folder / "2-good.eml").write_bytes(dsn(ctx.settings, mail))
    result = import_path(ctx, folder)
    assert (result.quarantined, result.processed) == (1, 1)
    with ctx.db.session() as session:
        assert suppressed(session, who.email)


def test_header_message_id_reads_folded_and_missing_headers() -> None:
    assert header_message_id(b"Subject: x\r\nMessage-ID:\r\n <a@b>\r\n\r\nbody") == "<a@b>"
    assert header_message_id(b"Subject: x\r\n\r\nMessage-ID: <in@body>\r\n") == ""
    assert header_message_id(b"message-id: <\xe6\xb8\xac@b>\n\n") == "<測@b>"


@settings(max_examples=2000, deadline=None)
@given(head=st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"\n\r", b"a", b"Message-ID: <a@b>"]),
                     max_size=16).map(b"".join))
def test_the_header_block_ends_at_the_first_blank_line_whatever_the_line_ends(head: bytes) -> None:
    blank = re.search(rb"\r?\n\r?\n|\r\r", head)  # the definition header_end computes with bytes.find
    assert header_end(head) == (blank.start() if blank else len(head))


@pytest.mark.once
def test_fifty_megabyte_reply_is_stored_and_routed(ctx: AppContext) -> None:
    who = add_applicant(ctx)
    body = "請見附件\r\n" + ("A" * 76 + "\r\n") * (50 * 1024 * 1024 // 78)
    row = intake(ctx, reply(who.email, body))
    assert row.size > 50 * 1000 * 1000 and row.status == InboundStatus.PROCESSED
    with ctx.db.session() as session:
        assert [i.kind for i in items(session)] == [SupportKind.REPLY]
