"""Issue 13 finding 10: a reply is trusted on its From header only when something proves it.

A reply really DKIM-signed by the applicant's domain (the key published in a local DNS server that
mailflow asks through its own resolver) is 寄件者已驗證; the same words under a forged signature, or with
no signature, are not — and their item warns customer service and folds the Email correction away.
Authentication-Results count only with our authserv-id and only above our own Received header."""

from __future__ import annotations

import uuid

import dkim
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.inbound import sender_auth
from mailflow.inbound.sender_auth import judge, parse_results
from mailflow.models import InboundMessage, SupportNote
from tests.factories import add_applicant, make_staff, sign_in
from tests.inbound.dns_server import DkimKey, DnsServer, dns_server, make_dkim_key  # noqa: F401
from tests.inbound.test_intake_helpers import items, sent_mail
from tests.inbound.test_route import receive

SELECTOR = "s2026"
DOMAIN = "example.com"  # the applicant's (wang@example.com) mail domain
OUR_MX = "mx.twport.com.tw"


def reply_to(mail_message_id: str, body: str, *, sender: str = f"王小明 <wang@{DOMAIN}>",
             top: str = "") -> bytes:
    return (
        f"{top}From: {sender}\r\nTo: hep@twport.com.tw\r\nSubject: Re: 帳號審核通過通知\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{DOMAIN}>\r\nIn-Reply-To: {mail_message_id}\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


def signed(raw: bytes, key: DkimKey, domain: str = DOMAIN) -> bytes:
    signature = dkim.sign(raw, SELECTOR.encode(), domain.encode(), key.private_pem,
                          include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return bytes(signature) + raw


@pytest.fixture
def published(dns_server: DnsServer, ctx: AppContext) -> DkimKey:  # noqa: F811
    key = make_dkim_key()
    dns_server.publish(f"{SELECTOR}._domainkey.{DOMAIN}", key.record)
    ctx.settings = ctx.settings.updated(inbound={"dns_resolver": dns_server.address})
    return key


CHANGE_ME = "我的 Email 打錯了,請改成 wang.new@evil.example.net,謝謝。"


def test_a_genuinely_signed_reply_is_authenticated(ctx: AppContext, published: DkimKey,
                                                   dns_server: DnsServer) -> None:  # noqa: F811
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, signed(reply_to(mail.message_id, CHANGE_ME), published))
    assert (row.sender_auth, row.sender_auth_detail) == ("pass", f"dkim=pass header.d={DOMAIN} "
                                                                 "(verified by mailflow)")
    assert f"{SELECTOR}._domainkey.{DOMAIN}." in dns_server.asked  # the key came from DNS
    with ctx.db.session() as session:
        [item] = items(session)
        assert (item.account_id, item.sender_auth) == (who.account_id, "pass")


def test_a_forged_signature_fails_and_no_signature_proves_nothing(ctx: AppContext, published: DkimKey,
                                                                  settings: Settings) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    other_key = make_dkim_key()  # the attacker signs for example.com with a key DNS does not publish
    forged = receive(ctx, signed(reply_to(mail.message_id, CHANGE_ME), other_key))
    assert forged.sender_auth == "fail" and "dkim=fail" in forged.sender_auth_detail
    # A genuine signature over other words, with the body changed afterwards, fails too.
    genuine = signed(reply_to(mail.message_id, "原本的內容"), published)
    tampered = receive(ctx, genuine.replace("原本的內容".encode(), CHANGE_ME.encode()))
    assert tampered.sender_auth == "fail"
    # Signed by the attacker's own domain: valid, but it says nothing about example.com.
    dns_key = make_dkim_key()
    unsigned = receive(ctx, reply_to(mail.message_id, CHANGE_ME))
    other_domain = receive(ctx, signed(reply_to(mail.message_id, CHANGE_ME + " "), dns_key,
                                       domain="evil.example.net"))
    assert unsigned.sender_auth == "none"
    assert other_domain.sender_auth == "none" and "evil.example.net" in other_domain.sender_auth_detail
    with ctx.db.session() as session:
        [item] = items(session)  # one open reply item for the account; the later mails are notes on it
        assert item.sender_auth == "fail"
        notes = session.scalars(select(SupportNote.text).where(SupportNote.item_id == item.id)).all()
        assert notes and all(n.startswith("[寄件者") for n in notes)


def test_a_display_name_holding_the_applicants_address_is_not_their_address(
        ctx: AppContext, published: DkimKey) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    raw = reply_to(mail.message_id, CHANGE_ME, sender='"wang@example.com" <x@evil.example.net>')
    row = receive(ctx, signed(raw, published))  # signed for example.com, but From is evil.example.net
    assert row.from_address == "x@evil.example.net" and row.sender_auth == "none"


def test_a_dns_failure_is_not_a_forgery(ctx: AppContext, published: DkimKey) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    # nothing answers there
    ctx.settings = ctx.settings.updated(inbound={"dns_resolver": "127.0.0.1:9"})
    sender_auth._lookups.clear()
    row = receive(ctx, signed(reply_to(mail.message_id, CHANGE_ME), published))
    assert row.sender_auth == "none" and "key lookup failed" in row.sender_auth_detail


def test_two_from_headers_are_never_authenticated(ctx: AppContext, published: DkimKey) -> None:
    settings = ctx.settings
    raw = signed(reply_to("<x@twport.com.tw>", "hi"), published)
    doubled = raw.replace(b"From: ", b"From: <x@evil.example.net>\r\nFrom: ", 1)
    assert judge(doubled, settings).verdict == "none"
    assert judge(raw, settings).verdict == "pass"


# --- Authentication-Results ----------------------------------------------------------------

MX_RECEIVED = (f"Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
               f"\tby {OUR_MX} (Postfix) with ESMTPS id 4XyZ for <hep@twport.com.tw>;\r\n"
               f"\tMon, 2 Mar 2026 10:00:01 +0800\r\n")


def results(authserv_id: str, body: str) -> str:
    return f"Authentication-Results: {authserv_id};\r\n\t{body}\r\n"


@pytest.fixture
def trusting(ctx: AppContext) -> Settings:
    # only the headers decide in these tests
    ctx.settings = ctx.settings.updated(inbound={
        "authserv_id": f"{OUR_MX}, backup-mx.twport.com.tw", "dkim_verify": False})
    return ctx.settings


@pytest.mark.parametrize(("top", "verdict"), [
    # Our MX's results, written above its own Received header: believed.
    (results(OUR_MX, f"dkim=pass (2048-bit key) header.d={DOMAIN} header.s=s1") + MX_RECEIVED, "pass"),
    (results(OUR_MX.upper(), f"dmarc=pass (p=quarantine) header.from={DOMAIN}") + MX_RECEIVED, "pass"),
    (results(OUR_MX, f"spf=pass smtp.mailfrom=bounce@{DOMAIN}") + MX_RECEIVED, "pass"),
    (results(OUR_MX, f"dmarc=fail (p=reject) header.from={DOMAIN}") + MX_RECEIVED, "fail"),
    (results(OUR_MX, f"dkim=fail header.d={DOMAIN}") + MX_RECEIVED, "fail"),
    (results("backup-mx.twport.com.tw", f"dkim=pass header.i=@{DOMAIN}") + MX_RECEIVED, "pass"),
    # The sender wrote our id into the mail: it sits below our MX's Received header.
    (MX_RECEIVED + results(OUR_MX, f"dkim=pass header.d={DOMAIN}"), "none"),
    (MX_RECEIVED + results(OUR_MX, f"dmarc=pass header.from={DOMAIN}"), "none"),
    # Someone else's server vouching: not ours, not believed.
    (results("mx.evil.example.net", f"dkim=pass header.d={DOMAIN}") + MX_RECEIVED, "none"),
    # Ours, but about another domain, or only an ARC chain.
    (results(OUR_MX, "dkim=pass header.d=evil.example.net") + MX_RECEIVED, "none"),
    (results(OUR_MX, "arc=pass (i=1)") + MX_RECEIVED, "none"),
    (results(OUR_MX, "none") + MX_RECEIVED, "none"),
], ids=["dkim-pass", "dmarc-pass", "spf-pass", "dmarc-fail", "dkim-fail", "second-id", "forged-dkim",
        "forged-dmarc", "untrusted-id", "other-domain", "arc-only", "none"])
def test_authentication_results_count_only_from_our_server_above_its_received_header(
        ctx: AppContext, trusting: Settings, top: str, verdict: str) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, reply_to(mail.message_id, CHANGE_ME, top=top))
    assert row.sender_auth == verdict, row.sender_auth_detail


def test_a_forged_copy_of_our_header_below_the_real_one_changes_nothing(ctx: AppContext,
                                                                       trusting: Settings) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    top = (results(OUR_MX, f"dkim=none; dmarc=none header.from={DOMAIN}") + MX_RECEIVED
           + results(OUR_MX, f"dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}"))
    row = receive(ctx, reply_to(mail.message_id, CHANGE_ME, top=top))
    assert row.sender_auth == "none"


def test_more_hops_of_our_own_move_the_line(ctx: AppContext, trusting: Settings) -> None:
    """MX then the mailbox server's LMTP: two Received headers of ours above the mail's own."""
    ctx.settings = trusting.updated(inbound={"authserv_hops": 2})
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    lmtp = (f"Received: from {OUR_MX} by imap.twport.com.tw with LMTP id q1;\r\n"
            "\tMon, 2 Mar 2026 10:00:02 +0800\r\n")
    genuine = lmtp + results(OUR_MX, f"dkim=pass header.d={DOMAIN}") + MX_RECEIVED
    forged = lmtp + MX_RECEIVED + results(OUR_MX, f"dkim=pass header.d={DOMAIN}")
    assert receive(ctx, reply_to(mail.message_id, CHANGE_ME, top=genuine)).sender_auth == "pass"
    assert receive(ctx, reply_to(mail.message_id, CHANGE_ME + "!", top=forged)).sender_auth == "none"


def test_without_a_configured_authserv_id_no_header_is_believed(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.updated(inbound={"dkim_verify": False})
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    top = results(OUR_MX, f"dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}") + MX_RECEIVED
    assert receive(ctx, reply_to(mail.message_id, CHANGE_ME, top=top)).sender_auth == "none"


def test_the_header_parser_reads_rfc_8601_values() -> None:
    value = ('mx.twport.com.tw 1; (a comment; with a semicolon) dkim=pass (good "sig") reason="ok; fine" '
             'header.d=example.com header.s=s1;\r\n spf=pass smtp.mailfrom="b@example.com"; dmarc/1=fail '
             'header.from=example.com')
    authserv_id, found = parse_results(value)
    assert authserv_id == "mx.twport.com.tw"
    assert [(r.method, r.result) for r in found] == [("dkim", "pass"), ("spf", "pass"), ("dmarc", "fail")]
    assert found[0].props == {"reason": "ok; fine", "header.d": "example.com", "header.s": "s1"}
    assert found[1].props == {"smtp.mailfrom": "b@example.com"}
    assert parse_results("i=2; mx.twport.com.tw; dkim=pass header.d=a.b")[0] == "mx.twport.com.tw"
    assert parse_results("mx.twport.com.tw; none") == ("mx.twport.com.tw", [])
    assert parse_results("") == ("", [])


def test_alignment_is_the_domain_or_a_parent_or_child_of_it() -> None:
    assert sender_auth.aligned("example.com", "example.com")
    assert sender_auth.aligned("example.com", "mail.example.com")
    assert sender_auth.aligned("mail.example.com", "example.com")
    assert not sender_auth.aligned("badexample.com", "example.com")
    assert not sender_auth.aligned("example.com.evil.net", "example.com")
    assert not sender_auth.aligned("", "example.com")


# --- what customer service sees ------------------------------------------------------------


def test_the_item_page_warns_and_folds_the_correction_away_on_an_unproven_reply(
        ctx: AppContext, client: TestClient, settings: Settings, published: DkimKey) -> None:
    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    receive(ctx, reply_to(mail.message_id, CHANGE_ME))  # unsigned
    other = add_applicant(ctx, account="lin5678", email="lin@example.com")
    other_mail = sent_mail(ctx, other)
    receive(ctx, signed(reply_to(other_mail.message_id, "請問何時可以登入?", sender="林 <lin@example.com>"),
                        published))
    with ctx.db.session() as session:
        staff = make_staff(session)
        by_account = {i.account_id: i.id for i in items(session)}
    sign_in(client, settings, staff)

    listing = client.get("/support?kind=reply").text
    assert listing.count("寄件者未經驗證") == 1 and listing.count("寄件者已驗證") == 1

    page = client.get(f"/support/items/{by_account[who.account_id]}").text
    assert "sender-unproven" in page and "請先撥打申請人登記的手機確認" in page
    assert '<details class="correct-email-guarded">' in page
    assert page.index('<details class="correct-email-guarded">') < page.index('class="correct-email"')
    assert "no authentication result from our server" in page  # what the verdict rests on

    proven = client.get(f"/support/items/{by_account[other.account_id]}").text
    assert "寄件者已驗證" in proven and "sender-unproven" not in proven
    assert "correct-email-guarded" not in proven and 'class="correct-email"' in proven

    export = client.get("/support/export.csv?kind=reply").content.decode("utf-8-sig")
    assert export.splitlines()[0].endswith("寄件者驗證")
    assert "寄件者未經驗證" in export and "寄件者已驗證" in export


def test_a_bounce_item_shows_no_sender_label(ctx: AppContext) -> None:
    from tests.inbound.test_intake_helpers import dsn

    who = add_applicant(ctx)
    mail = sent_mail(ctx, who)
    row = receive(ctx, dsn(ctx.settings, mail))
    with ctx.db.session() as session:
        [item] = items(session)
        assert item.sender_auth is None
        assert session.get(InboundMessage, row.id).sender_auth is None  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["resolver.example.net", "127.0.0.1:0", "127.0.0.1:70000", "1.2.3.4:x"])
def test_a_dns_resolver_that_is_no_address_is_refused_naming_the_key(value: str) -> None:
    from mailflow.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"^inbound\.dns_resolver: "):
        load_settings(None, {"MAILFLOW_INBOUND__DNS_RESOLVER": value})
    assert load_settings(None, {"MAILFLOW_INBOUND__DNS_RESOLVER": "127.0.0.1:5353"}).inbound.dns_resolver


def test_a_new_mail_from_an_applicant_is_judged_like_a_reply(ctx: AppContext, published: DkimKey) -> None:
    """No Re: and no In-Reply-To: the mail is 'other', and reaches customer service as the applicant's."""
    who = add_applicant(ctx)
    fresh = reply_to("", CHANGE_ME).replace(b"In-Reply-To: \r\n", b"").replace(b"Re: ", b"")
    signed_row = receive(ctx, signed(fresh, published))
    unsigned_row = receive(ctx, fresh.replace(b"Message-ID: <", b"Message-ID: <x"))
    assert (signed_row.kind, signed_row.sender_auth) == ("other", "pass")
    assert (unsigned_row.kind, unsigned_row.sender_auth) == ("other", "none")
    with ctx.db.session() as session:
        [item] = items(session)
        assert (item.account_id, item.sender_auth) == (who.account_id, "none")  # the weaker of the two
