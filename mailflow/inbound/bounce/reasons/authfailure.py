"""`authfailure`: the sender's domain failed SPF, DKIM or DMARC at the receiving side.

RFC 7372 gave these their own codes (x.7.20 - x.7.26, x.7.29); before that servers said it in words.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="authfailure",
    codes=("4.7.24", "4.7.26", "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "5.7.29"),
    phrases=(
        "does not have authentication information",
        "fails to pass authentication",
        "//spf.pobox.com",
        "bad spf records for",
        "dmarc policy",
        "please inspect your spf settings",
        "sender policy framework (spf) fail",
        "sender policy framework violation",
        "spf (sender policy framework) domain authentication fail",
        "spf check: fail",
        "is not allowed to send mail for",
        "dkim verification failed",
        "dmarc verification failed",
        "spf validation failed",
        "unauthenticated email",
        "failed spf",
        "spf fail",
        "dkim fail",
        "dmarc rejection",
        "authentication checks failed",
        "does not pass dmarc",
        "dmarc failed",
        "spf check failed",
        "sender domain does not pass",
        "not designate",
        "spf: fail",
    ),
)
