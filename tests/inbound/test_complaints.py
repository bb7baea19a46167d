"""Complaint reports in the forms the standards allow, built here after RFC 5965 / 6650 / 6590 and
Amazon SES's documented notification layout, not copied from any corpus."""

from __future__ import annotations

import json

import pytest

from mailflow.inbound.analysis import analyze
from mailflow.inbound.bounce.arf import UNKNOWN_RECIPIENT

ORIGINAL = (
    "Received: from mailserver.example.net (mailserver.example.net [192.0.2.1])\n"
    "From: <somespammer@example.net>\n"
    "To: <Undisclosed Recipients>\n"
    "Subject: Earn money\n"
    "Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\n"
    "Date: Thu, 8 Mar 2005 14:00:00 EDT\n"
)


def _arf(fields: str, original: str = ORIGINAL, original_type: str = "message/rfc822",
         report_type: str = "message/feedback-report") -> bytes:
    return (
        "From: <abusedesk@example.com>\n"
        "To: <abuse@example.net>\n"
        "Subject: FW: Earn money\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part1_13d.2e68ed54"\n\n'
        "--part1_13d.2e68ed54\nContent-Type: text/plain; charset=\"US-ASCII\"\n\n"
        "This is an email abuse report for an email message received from IP 192.0.2.1.\n\n"
        f"--part1_13d.2e68ed54\nContent-Type: {report_type}\n\n"
        f"{fields}\n"
        f"--part1_13d.2e68ed54\nContent-Type: {original_type}\nContent-Disposition: inline\n\n"
        f"{original}\n\nBody\n"
        "--part1_13d.2e68ed54--\n"
    ).encode()


FIELDS = "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\nSource-IP: 192.0.2.1\n"


def test_every_original_rcpt_to_is_a_complaining_recipient() -> None:
    raw = _arf(FIELDS + "Original-Rcpt-To: <user@example.com>\nOriginal-Rcpt-To: other@example.org\n")
    result = analyze(raw)
    assert result.kind == "complaint" and result.feedback_type == "abuse"
    assert [r.address for r in result.recipients] == ["user@example.com", "other@example.org"]
    assert all(r.reason == "feedback" and not r.hard for r in result.recipients)


def test_without_original_rcpt_to_the_returned_headers_name_the_recipient() -> None:
    headers = ORIGINAL.replace("To: <Undisclosed Recipients>", "To: Someone <someone@example.com>")
    raw = _arf(FIELDS, headers, original_type="text/rfc822-headers")
    assert [r.address for r in analyze(raw).recipients] == ["someone@example.com"]


def test_a_report_part_labelled_text_plain_still_counts() -> None:
    fields = FIELDS.replace("abuse", "fraud") + "Original-Rcpt-To: user@example.com\n"
    raw = _arf(fields, report_type="text/plain")
    result = analyze(raw)
    assert (result.kind, result.feedback_type) == ("complaint", "fraud")
    assert [r.address for r in result.recipients] == ["user@example.com"]


@pytest.mark.parametrize("to", ["<Undisclosed Recipients>", "[redacted]", "undisclosed-recipients:;"])
def test_a_hidden_or_redacted_recipient_gets_the_placeholder(to: str) -> None:
    raw = _arf(FIELDS, ORIGINAL.replace("<Undisclosed Recipients>", to))
    assert [r.address for r in analyze(raw).recipients] == [UNKNOWN_RECIPIENT]


def test_a_redacted_local_part_is_kept_as_reported() -> None:
    # RFC 6590: the reporter may replace the local part with a hash or a fixed string
    raw = _arf(FIELDS + "Original-Rcpt-To: 3b7c9d3f1a@example.com\n")
    assert [r.address for r in analyze(raw).recipients] == ["3b7c9d3f1a@example.com"]


def test_amazon_ses_complaint_notification() -> None:
    message = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2016-01-27T14:59:38.237Z",
        },
        "mail": {"source": "sender@example.net", "messageId": "0000014644fe5ef6-9a483358"},
    }
    envelope = {"Type": "Notification", "Message": json.dumps(message)}
    raw = (
        "From: no-reply@sns.amazonaws.com\nTo: sender@example.net\nSubject: AWS Notification Message\n"
        "Content-Type: text/plain; charset=UTF-8\n\n" + json.dumps(envelope, indent=2) + "\n"
    ).encode()
    result = analyze(raw)
    assert (result.kind, result.feedback_type) == ("complaint", "abuse")
    assert [r.address for r in result.recipients] == ["recipient@example.com"]
