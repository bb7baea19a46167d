"""`rejected`: the envelope sender (MAIL FROM) was refused, not the recipient."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import Facts


def rule(f: Facts) -> bool | None:
    if f.by_status == "rejected":
        return None
    # a sender-side refusal by text: only when the reply came at MAIL FROM, at DATA (unless the
    # code says the user is unknown), or when the code names nothing better
    command = f.hit.command
    if command == "MAIL" or (command == "DATA" and f.by_status != "userunknown"):
        return f.says("rejected")
    if f.hit.status[1:] == ".1.0" and "sender" in f.low:
        # x.1.0 is "other address status" (RFC 3463): the address it is about may be the sender's
        return f.says("rejected")
    return f.by_status in ("", "securityerror", "systemerror") and f.says("rejected")


REASON = Reason(
    name="rejected",
    codes=("4.1.7", "4.1.8", "5.1.7", "5.1.8"),
    documented=(
        ("sender address rejected", "Postfix smtpd: 'Sender address rejected: ...'"),
        ("domain of sender address", "sendmail: '553 5.1.8 Domain of sender address ... does not exist'"),
        ("sender was rejected", "qmail 1.03 qmail-remote: 'Connected to ... but sender was rejected.'"),
        ("purported responsible address", "Sender ID, RFC 4406/4407 (the Purported Responsible Address)"),
        ("sender verify failed", "Exim ACL verify = sender: 'Sender verify failed'"),
    ),
    phrases=(
        "<> invalid sender",
        "administrative prohibition",
        "batv failed to verify",
        "batv validation failure",
        "backscatter protection detected an invalid or expired email address",
        "bogus mail from",
        "connections not accepted from servers without a valid sender domain",
        "denied by secumail valid-address-filter",
        "email address is on senderfilterconfig list",
        "emetteur invalide",
        "empty email address",
        "empty envelope senders not allowed",
        "from: domain is invalid. please provide a valid from:",
        "fully qualified email address required",
        "invalid domain, see <url:",
        "invalid sender",
        "is not a registered gateway user",
        "mail from not owned by user",
        "mailfrom domain is listed in spamhaus",
        "null sender is not allowed",
        "returned mail not accepted here",
        "rfc 1035 violation",
        "sender address has been blacklisted",
        "sender email address rejected",
        "sender is in my badmailfrom list",
        "sender is spammer",
        "sender not pre-approved",
        "sender rejected",
        "sender domain is empty",
        "server does not accept mail from",
        "the message has been rejected by batv defense",
        "the sender's address was rejected",
        "this server does not accept mail from",
        "transaction failed unsigned dsn for",
        "unroutable sender address",
        "you are not allowed to post to this mailing list",
        "your access to submit messages to this e-mail system has been rejected",
        "your email address has been blacklisted",
        "domain of sender address does not exist",
        "sender domain must exist",
        "sender unknown",
        "not accept mail from you",
        "access denied (in reply to mail from command)",
        "access denied (sender blacklisted)",
        "address rejected",
        "because the sender isn't on the recipient's list of senders to accept mail from",
        "can't determine purported responsible address",
        "denied [bouncedeny]",
        "delivery not authorized, message refused",
        "does not exist e2110",
        "domain of sender address ",
        "envelope blocked - ",
        "error: no third-party dsns",
        "message rejected: email address is not verified",
        "mx records for ",
        "recipient addresses rejected : access denied",
        "recipient not accepted. (batv: no tag",
        "rfc 1035 violation: recursive cname records for",
        "rule imposed mailbox access for",
        "sending this from a different address or alias using the ",
        "sender is in my black list",
        "spam reporting address",
        "syntax error: empty email address",
        "you are sending to/from an address that has been blacklisted",
    ),
    pairs=(
        ("sender ", " rejected"),
        ("domain ", " rejected"),
    ),
    unless=(
        "5.1.0 address rejected",
        "recipient address rejected",
        "sender ip address rejected",
    ),
    rule=rule,
)
