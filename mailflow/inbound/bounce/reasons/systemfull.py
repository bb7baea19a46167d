"""`systemfull`: the receiving system is out of storage (RFC 3463 x.3.1)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="systemfull",
    codes=("4.3.1", "4.4.5", "5.3.1"),
    phrases=(
        "insufficient disk space",
        "mail system full",
        "requested mail action aborted: exceeded storage allocation",
        "insufficient system storage",
        "insufficient system resources",
        "system storage",
    ),
)
