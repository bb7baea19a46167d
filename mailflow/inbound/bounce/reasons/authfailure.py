"""`authfailure`: the sender's domain failed SPF, DKIM or DMARC at the receiving side.

RFC 7372 gave these their own codes (x.7.20 - x.7.26, x.7.29); before that servers said it in words.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="authfailure",
    codes=("4.7.24", "4.7.26", "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "5.7.29"),
    documented=(
        (
            "sender is unauthenticated",
            "Gmail SMTP errors, 550 5.7.26 ('... blocked because the sender is unauthenticated')",
        ),
        (
            "does not have authentication information",
            "Gmail SMTP errors, 550 5.7.26 ('... or fails to pass authentication checks')",
        ),
        (
            "unauthenticated email",
            "Gmail SMTP errors, 550 5.7.26 ('... not accepted due to domain's DMARC policy')",
        ),
        ("dmarc policy", "Gmail SMTP error reference 550 5.7.26 (DMARC)"),
        (
            "not designate",
            "SPF (RFC 7208) explanation: 'domain of ... does not designate ... as permitted sender'",
        ),
        ("does not pass dmarc", "Exchange Online NDR 5.7.509 ('... does not pass DMARC verification')"),
    ),
    phrases=(
        "fails to pass authentication",
        "//spf.pobox.com",
        "bad spf records for",
        "please inspect your spf settings",
        "sender policy framework (spf) fail",
        "sender policy framework violation",
        "spf (sender policy framework) domain authentication fail",
        "spf check: fail",
        "is not allowed to send mail for",
        "dkim verification failed",
        "dmarc verification failed",
        "spf validation failed",
        "failed spf",
        "spf fail",
        "dkim fail",
        "dmarc rejection",
        "authentication checks failed",
        "dmarc failed",
        "spf check failed",
        "sender domain does not pass",
        "spf: fail",
    ),
)
