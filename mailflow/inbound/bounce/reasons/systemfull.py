"""`systemfull`: the receiving system is out of storage (RFC 3463 x.3.1)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="systemfull",
    codes=("4.3.1", "4.4.5", "5.3.1"),
    documented=(
        ("insufficient system storage", "RFC 5321 reply 452 '... insufficient system storage'"),
        ("insufficient disk space", "sendmail: '452 4.4.5 Insufficient disk space; try again later'"),
        ("mail system full", "RFC 3463 X.3.1 'Mail system full'"),
    ),
    phrases=(
        "requested mail action aborted: exceeded storage allocation",
        "insufficient system resources",
        "system storage",
    ),
)
