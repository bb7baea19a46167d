"""Each bounce detector family and remote-host rule on a small hand-written sample.

The samples in tests/inbound/samples/ are synthetic (written for these tests), so a
detector is checked on the shape of its format, not only on the Sisimai corpus.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from mailflow.inbound.analysis import analyze, header_text
from mailflow.inbound.bounce import build, find_failures
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.reasons import classify
from mailflow.inbound.bounce.textblocks import command_in, smtp_command

SAMPLES = Path(__file__).parent / "samples"

# sample file -> (detector, recipient, reason, hard, action)
CASES = {
    "apachejames.eml": ("apachejames", "gone@mail.example.net", "filtered", False, "failed"),
    "verizon.eml": ("verizon", "5550100@vtext.com", "userunknown", True, "failed"),
    "ezweb.eml": ("ezweb", "stopped-user@ezweb.ne.jp", "suspend", False, "failed"),
    "fml.eml": ("fml", "cats@lists.example.jp", "systemerror", False, "failed"),
    "googleworkspace.eml": ("googleworkspace", "team@groups.example.com", "rejected", False, "failed"),
    "imailserver.eml": ("imailserver", "nobody@mail.example.net", "userunknown", True, "failed"),
    "trendmicro.eml": ("trendmicro", "nobody@example.com", "userunknown", True, "failed"),
    "x3.eml": ("x3", "nobody@example.com", "userunknown", True, "failed"),
    "x5.eml": ("rfc3464", "nobody@example.net", "userunknown", True, "failed"),  # a report in a report
    "postfix_smtpd.eml": ("postfix_smtpd", "someone@example.com", "systemerror", False, "failed"),
    # a receipt rule's template, not a mailbox lookup: the owner's filter
    "receivingses.eml": ("receivingses", "info@mail.example.jp", "filtered", False, "failed"),
    "smail.eml": ("smail", "someone@no-such-host.example.com", "hostunknown", True, "failed"),
    # no family detector: the reason sits above the recipient list, behind a heading
    "mailmarshal.eml": ("plaintext", "nobody@example.net", "userunknown", True, "failed"),
}


def _detector(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    ctx = build(msg, header_text(msg, "Subject"), header_text(msg, "From"))
    failures = find_failures(ctx)
    assert failures, "no detector recognised the sample"
    return failures[0].detector


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample(name: str) -> None:
    detector, address, reason, hard, action = CASES[name]
    raw = (SAMPLES / name).read_bytes()
    result = analyze(raw)
    assert result.kind == "bounce"
    assert [r.address for r in result.recipients] == [address]
    got = result.recipients[0]
    assert (got.reason, got.hard, got.action) == (reason, hard, action)
    assert _detector(raw) == detector
    # CRLF and CR line ends give the same answer
    lf = raw.replace(b"\r\n", b"\n")
    assert analyze(lf.replace(b"\n", b"\r\n")).recipients == result.recipients
    assert analyze(lf.replace(b"\n", b"\r")).recipients == result.recipients


def _dsn(recipient: str, status: str, diagnostic: str, remote: str = "") -> bytes:
    remote_line = f"Remote-MTA: dns; {remote}\n" if remote else ""
    return (
        "From: MAILER-DAEMON@mta.example.org\n"
        "To: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\n\n'
        "--R\nContent-Type: text/plain\n\nThis is the mail system at host mta.example.org.\n\n"
        "--R\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mta.example.org\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
        f"{remote_line}Diagnostic-Code: smtp; {diagnostic}\n\n--R--\n"
    ).encode()


@pytest.mark.parametrize(
    ("recipient", "status", "diagnostic", "remote", "reason"),
    [
        # Cox: AUP# code beats the generic "sender rejected" wording
        ("a@cox.net", "5.1.0", "550 5.1.0 <s@example.org> sender rejected. AUP#CXBL", "", "blocked"),
        # Spectrum: four-digit AUP code ranges
        (
            "a@charter.net",
            "5.1.0",
            "550 5.1.0 <s@example.org> sender rejected. AUP#In-1310",
            "",
            "toomanyconn",
        ),
        # Orange / Wanadoo / La Poste labels, matched by the remote MTA's name too
        (
            "a@example.fr",
            "5.2.0",
            "550 5.2.0 Mail rejete. Mail rejected. OFR_506 [506]",
            "smtp-in.orange.fr",
            "spamdetected",
        ),
        ("a@laposte.net", "5.5.0", "550 5.5.0 Invalid recipient. LPN007_416", "", "userunknown"),
        # Facebook response codes
        ("a@facebook.com", "5.1.1", "550 5.1.1 RCP-P2 Refused due to recipient preferences", "", "filtered"),
        # Tencent phrases
        (
            "a@qq.com",
            "5.0.0",
            "550 Mail content denied. http://service.mail.qq.com/detail/122/171",
            "",
            "spamdetected",
        ),
        # KDDI: the bare filter answer
        ("a@ezweb.ne.jp", "5.0.0", "550 : User unknown", "", "filtered"),
        # MessageLabs, I.UA, Apple, AOL
        (
            "a@example.com",
            "5.0.0",
            "553 Sorry, your domain has been blacklisted",
            "cluster1.eu.messagelabs.com",
            "rejected",
        ),
        ("a@email.ua", "5.0.0", "550 Mailbox is full. https://mail.i.ua/err/4/", "", "mailboxfull"),
        ("a@icloud.com", "5.1.6", "550 5.1.6 recipient no longer on server: a@icloud.com", "", "hasmoved"),
        ("a@aol.com", "5.4.4", "Host or domain name not found. Name service error", "", "hostunknown"),
        # Yahoo via its MX names
        (
            "a@example.com",
            "5.0.0",
            "554 delivery error: dd This user doesn't have a example.com account",
            "mta5.am0.yahoodns.net",
            "userunknown",
        ),
    ],
)
def test_remote_host_rules(recipient: str, status: str, diagnostic: str, remote: str, reason: str) -> None:
    result = analyze(_dsn(recipient, status, diagnostic, remote))
    assert result.kind == "bounce"
    assert result.recipients[0].reason == reason


def test_remote_rules_leave_other_domains_alone() -> None:
    diagnostic = "550 5.1.0 <s@example.org> sender rejected. AUP#CXBL (in reply to MAIL FROM command)"
    result = analyze(_dsn("a@example.net", "5.1.0", diagnostic))
    assert result.recipients[0].reason == "rejected"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("550 5.1.1 user unknown (in reply to RCPT TO command)", "RCPT"),
        ("SMTP error from remote mail server after RCPT TO:<a@b.example>: 550 no", "RCPT"),
        ("550 rejected (in reply to end of DATA command)", "DATA"),
        ("host mx.example.com said: 554 sorry (in reply to MAIL FROM command)", "MAIL"),
        ("550 DATABASE@EXAMPLE.JP is unknown", ""),  # a command word inside an address is no command
        ("550 user unknown", ""),
    ],
)
def test_command_in_reply_text(text: str, command: str) -> None:
    assert command_in(text) == command


@pytest.mark.parametrize(
    ("command", "status", "reason"),
    [
        ("RCPT", "5.0.0", "userunknown"),  # a missing user, answered to RCPT
        ("DATA", "5.0.0", "filtered"),  # "user unknown" after DATA is a content/sender filter
        ("", "5.0.0", "filtered"),  # no command known: Sisimai's rule makes it a filter too
        ("DATA", "5.1.1", "userunknown"),  # an explicit x.1.1 status wins
    ],
)
def test_userunknown_depends_on_the_smtp_command(command: str, status: str, reason: str) -> None:
    hit = Hit(
        address="a@example.com",
        action="failed",
        status=status,
        diagnostic="550 User unknown",
        command=command,
    )
    assert classify(hit) == reason


def _own_host_dsn(reporting: str, recipient: str) -> bytes:
    """An RFC 3464 report with no Diagnostic-Code and no Remote-MTA: the reporting MTA's own verdict."""
    return (
        f"From: Mail Delivery System <Mailer-Daemon@{reporting}>\n"
        "To: sender@example.org\nSubject: Mail delivery failed: returning message to sender\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThe following address(es) failed:\n\n"
        f"  {recipient}\n    Unknown user\n\n"
        f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; {reporting}\n\n"
        f"Action: failed\nFinal-Recipient: rfc822;{recipient}\nStatus: 5.0.0\n\n--B--\n"
    ).encode()


@pytest.mark.parametrize(
    ("reporting", "reason", "hard"),
    [
        ("mx.example.net", "userunknown", True),  # the recipient's own host says it has no such user
        ("relay.example.org", "filtered", False),  # someone else's words with no SMTP command: a filter
    ],
)
def test_an_unknown_user_is_hard_when_the_recipients_own_host_says_so(
    reporting: str, reason: str, hard: bool
) -> None:
    (got,) = analyze(_own_host_dsn(reporting, "nobody@mx.example.net")).recipients
    assert (got.reason, got.hard) == (reason, hard)


def test_opensmtpds_rcpt_refusal_names_the_command() -> None:
    # OpenSMTPD's server answers RCPT TO for an unknown or unrelayable recipient with these words
    raw = _dsn("a@example.net", "5.0.0", "550 Invalid recipient: <a@example.net>")
    (got,) = analyze(raw).recipients
    assert (got.reason, got.hard) == ("userunknown", True)
    assert command_in("550 Invalid recipient: <a@example.net>") == ""  # the phrase, not a command word


def test_a_person_forwarding_a_bounce_sends_no_bounce() -> None:
    notice = (
        "Forwarded, can you look at this?\n\n"
        "This is the mail system at host mx.example.org.\n\n"
        "<nobody@example.net>: host mx.example.net said: 550 5.1.1 <nobody@example.net>: User unknown\n"
    )
    forward = f"From: Alice <alice@example.com>\nTo: hep@twport.com.tw\nSubject: Fwd: {{}}\n\n{notice}"
    assert analyze(forward.format("Undelivered Mail Returned to Sender").encode()).kind != "bounce"
    # the same words from the mail system itself are a bounce
    own = forward.replace("Alice <alice@example.com>", "MAILER-DAEMON@mx.example.org").replace("Fwd: ", "")
    result = analyze(own.format("Undelivered Mail Returned to Sender").encode())
    assert result.kind == "bounce" and [r.address for r in result.recipients] == ["nobody@example.net"]


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        # replies as the MTAs and providers document them (reasons/*.py, `documented`)
        ("5.1.1", "550 5.1.1 <a@example.net>: Recipient address rejected: User unknown in local recipient "
         "table (in reply to RCPT TO command)", "userunknown"),
        ("5.0.0", "550 Sorry, no mailbox here by that name. (#5.1.1) (in reply to RCPT TO command)",
         "userunknown"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "mesgtoobig"),
        ("5.7.1", "554 5.7.1 <a@example.net>: Relay access denied", "norelaying"),
        ("4.4.5", "452 4.4.5 Insufficient disk space; try again later", "systemfull"),
        ("5.0.0", "an MX or SRV record indicated no SMTP service", "notaccept"),
        ("5.0.0", "Could not deliver for the last 432000 seconds. Giving up.", "expired"),
        ("5.7.26", "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC "
         "policy", "authfailure"),
        ("5.7.9", "554 5.7.9 Message not accepted for policy reasons", "policyviolation"),
        ("5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
         "blocked"),
        ("4.2.2", "452-4.2.2 The email account that you tried to reach is over quota", "mailboxfull"),
        ("5.0.0", "Host or domain name not found. Name service error for name=example.net type=MX: Host "
         "not found, try again", "networkerror"),
    ],
)
def test_documented_replies(status: str, diagnostic: str, reason: str) -> None:
    (got,) = analyze(_dsn("a@example.net", status, diagnostic)).recipients
    assert got.reason == reason


def _classified(command: str, status: str, diagnostic: str) -> str:
    reply = diagnostic[:3] if diagnostic[:3].isdigit() else ""
    hit = Hit(address="a@example.com", action="failed", status=status, diagnostic=diagnostic,
              command=command, reply_code=reply, diagnostic_type="SMTP")
    return classify(hit)


@pytest.mark.parametrize(
    ("command", "status", "diagnostic", "reason"),
    [
        # RFC 5321 3.3: an address "known not to be deliverable" gets 550 to RCPT
        ("RCPT", "5.0.0", "550 Mailbox blah", "userunknown"),
        ("RCPT", "", "550 <a@example.com>... nope", "userunknown"),
        # ... but 550 also covers "no access" and "command rejected for policy reasons" (RFC 5321 4.2.3)
        ("RCPT", "5.0.0", "550 Refused: policy 12", "policyviolation"),
        ("RCPT", "", "550 Denied by policy", "policyviolation"),
        ("RCPT", "5.0.0", "554 Refused: policy 12", "onhold"),
        ("RCPT", "5.0.0", "550 Refused: policyd-weight 12", "onhold"),
        ("RCPT", "5.0.0", "550 No access for you", "onhold"),
        # another reply code, command or a code that names a subject is not that rule
        ("RCPT", "5.0.0", "554 Mailbox blah", "onhold"),
        ("DATA", "5.0.0", "550 Mailbox blah", "onhold"),
        ("RCPT", "5.7.1", "550 5.7.1 Mailbox blah", "securityerror"),
        # x.1.0 "other address status": the sender's address when the words say so
        ("RCPT", "5.1.0", "550 5.1.0 <bounce@example.org> sender rejected", "rejected"),
        ("RCPT", "5.1.0", "550 5.1.0 Address rejected", "userunknown"),
        # an account locked is suspended; "blocked" is not "locked"
        ("RCPT", "5.7.1", "550 5.7.1 User a@example.com temporarily locked", "suspend"),
        ("RCPT", "5.0.0", "550 Your IP has been blocked", "blocked"),
        # RFC 3463 subject 1 (addressing status) with any detail: "unknown user" is the address
        ("", "5.1.351", "550 5.1.351 Remote server returned -> 550 Unknown user a", "userunknown"),
        ("", "", "550 Unknown user a@example.com", "filtered"),
        # an x.6 code names the content's form; "content rejected" is no spam verdict, UBE is (RFC 2505)
        ("", "5.6.1", "500 5.6.1 Message content rejected", "contenterror"),
        ("DATA", "5.7.1", "550 5.7.1 Message content rejected, UBE, id=1", "spamdetected"),
        ("DATA", "5.7.1", "550 5.7.1 See https://www.youtube.com/", "securityerror"),
        # Exchange's per-recipient size limit (KB 960775): the message, not the mailbox, is too large
        ("RCPT", "5.2.3", "550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large", "mesgtoobig"),
        ("RCPT", "5.2.3", "552 5.2.3 Over the per-mailbox limit", "exceedlimit"),
        # Tencent's documented rate limits
        ("RCPT", "5.0.0", "550 Connection frequency limited [abc]", "toomanyconn"),
        # RFC 3463 X.2.2: the user "has exceeded a per-mailbox administrative quota"
        ("", "", "User mailbox exceeds allowed size: a@example.com", "mailboxfull"),
    ],
)
def test_codes_and_words_from_the_standards(command: str, status: str, diagnostic: str, reason: str) -> None:
    assert _classified(command, status, diagnostic) == reason


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("DATA", "policyviolation"),
        ("", "policyviolation"),
        ("RCPT", "securityerror"),
        ("MAIL", "securityerror"),
    ],
)
def test_a_policy_refusal_is_about_the_message_only_once_it_was_sent(command: str, reason: str) -> None:
    assert _classified(command, "5.7.0", "550 5.7.0 Policy violation") == reason


@pytest.mark.parametrize("command", ["", "DATA", "RCPT"])
@pytest.mark.parametrize(
    "diagnostic",
    [
        "The recipient name is not recognized",
        "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
        "User nobody (nobody@example.com) not listed in Domino Directory",
    ],
)
def test_a_failed_directory_lookup_is_an_unknown_user_whatever_the_command(
    command: str, diagnostic: str
) -> None:
    assert _classified(command, "", diagnostic) == "userunknown"


@pytest.mark.parametrize(
    ("diagnostic", "reason"),
    [
        ("554 5.7.0 Reject, id=12345-01 - SPAM", "spamdetected"),  # amavisd-new
        ("550 5.7.25 Reverse DNS validation failed", "requireptr"),  # RFC 7372 x.7.25
        ("550 No PTR record found for 192.0.2.1", "requireptr"),
    ],
)
def test_content_filter_and_reverse_dns_replies(diagnostic: str, reason: str) -> None:
    assert _classified("DATA", "", diagnostic) == reason


@pytest.mark.parametrize(
    ("status", "reason"),
    [("5.1.1", "blocked"), ("5.1.2", "hostunknown"), ("5.7.1", "blocked")],
)
def test_block_list_words_outrank_an_unknown_user_code(status: str, reason: str) -> None:
    diagnostic = f"550 {status} Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
    assert _classified("RCPT", status, diagnostic) == reason


def test_the_one_pass_phrase_search_finds_what_asking_each_reason_finds() -> None:
    from mailflow.inbound.bounce.reasons.catalogue import FULL

    def slow(low: str) -> frozenset[str]:
        return frozenset(r.name for r in FULL.reasons.values() if any(p in low for p in r.all_phrases))

    texts = ["", "550 5.1.1 ok", "x" * 3]
    for reason in FULL.reasons.values():
        for phrase in reason.all_phrases:
            half = phrase[: len(phrase) // 2]
            texts += [phrase, f"550 {phrase}.", phrase[:-1], phrase[1:], f"{half} {phrase}"]
    for low in texts:
        assert FULL.phrased(low) == slow(low), low


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason", "hard"),
    [
        # Exchange Online's own 5.1.10 (Microsoft's NDR reference) is an unknown recipient ...
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
         "userunknown", True),
        # ... RFC 7505's x.1.10 is a domain that takes no mail
        ("5.1.10", "550 5.1.10 Recipient address has null MX", "notaccept", True),
        ("5.4.312", "550 5.4.312 DNS query failed", "networkerror", False),
    ],
)
def test_exchange_online_codes(status: str, diagnostic: str, reason: str, hard: bool) -> None:
    (got,) = analyze(_dsn("a@example.net", status, diagnostic)).recipients
    assert (got.reason, got.hard) == (reason, hard)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        # qmail 1.03 qmail-remote.c's own sentences for each step of the session
        ("Connected to 192.0.2.1 but greeting failed.", "CONN"),
        ("Connected to 192.0.2.1 but my name was rejected.", "HELO"),
        ("Connected to 192.0.2.1 but sender was rejected.", "MAIL"),
        ("192.0.2.1 does not like recipient.", "RCPT"),
        ("192.0.2.1 failed on DATA command.", "DATA"),
        ("192.0.2.1 failed after I sent the message.", "DATA"),
        ("550 user unknown", ""),
    ],
)
def test_qmail_remote_names_the_failed_step(text: str, command: str) -> None:
    assert smtp_command(text) == command


@pytest.mark.parametrize(
    ("command", "reason"),
    [("DATA", "spamdetected"), ("", "spamdetected"), ("RCPT", "blocked"), ("MAIL", "blocked")],
)
def test_spam_is_a_verdict_on_content_sent_after_data(command: str, reason: str) -> None:
    # before DATA no content was seen: the block of the sending host is the reason
    assert _classified(command, "5.0.0", "554 5.0.0 Spam rejected: your IP has been blocked") == reason
