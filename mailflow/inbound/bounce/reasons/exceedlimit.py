"""`exceedlimit`: the message exceeds a limit the recipient (not the system) set (RFC 3463 x.2.3).

Different from `mesgtoobig` (x.3.4), which is the whole system's size limit.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="exceedlimit",
    codes=("4.2.3", "5.2.3"),
    phrases=(
        "message header size exceeds limit",
        "message too large for this recipient",
        "limit exceeded",
        "message size exceeds the limit set by the recipient",
    ),
)
