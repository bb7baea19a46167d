"""`suspend`: the recipient's mailbox exists but is disabled or suspended."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason
from mailflow.inbound.bounce.reasons.facts import Facts


def rule(f: Facts) -> bool | None:
    return True if f.hit.reply_code == "525" else None  # 525: user account disabled


REASON = Reason(
    name="suspend",
    codes=("5.7.13",),
    documented=(
        ("this mailbox is disabled", "Yahoo SMTP error codes, 554.30 ('This mailbox is disabled')"),
        ("account is locked", "vpopmail vdelivermail: 'account is locked email bounced'"),
        (
            "email account that you tried to reach is disabled",
            "Gmail SMTP errors, 550 5.2.1 ('... is disabled')",
        ),
        (
            "the email account that you tried to reach is inactive",
            "Gmail SMTP errors, 550 5.2.1 ('... is inactive')",
        ),
        ("mailbox disabled", "RFC 3463 X.2.1 'Mailbox disabled, not accepting messages'"),
    ),
    phrases=(
        "is inactive",
        "temporary locked",
        "temporarily locked",
        "recipient account is blocked",
        "compte du destinataire est bloque",
        "account disabled",
        "account has been disabled",
        "account has been suspended",
        "account is disabled",
        "account is inactive",
        "account is suspended",
        "account not active",
        "account suspended",
        "boite du destinataire archivee",
        "invalid/inactive user",
        "is a deactivated mailbox",
        "is unavailable: user is terminated",
        "mailbox currently suspended",
        "mailbox is frozen",
        "mailbox unavailable or access denied",
        "recipient rejected: temporarily inactive",
        "recipient suspend the service",
        "this account has been disabled",
        "user or domain is disabled",
        "user suspended",
        "vdelivermail: account is locked",
        "user account is disabled",
        "account has been deactivated",
        "mailbox is inactive",
        "is disabled",
        "inactive account",
        " is currently suspended",
        "archived recipient",
        "has been suspended",
        "this account has been disabled or discontinued",
        "this account has been temporarily suspended",
        "this address no longer accepts mail",
    ),
    # an account or user "locked" (vpopmail's "account is locked", "temporarily locked"): standing
    # alone, so "blocked" is not it
    words=("locked",),
    pairs=(
        ("account ", " disabled"),
        ("mailbox ", " disabled"),
        ("user ", " suspended"),
    ),
    rule=rule,
)
