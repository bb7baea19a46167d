"""`hasmoved`: the recipient's address has moved (RFC 3463 x.1.6).

Permanent: the address will not come back.
"""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="hasmoved",
    codes=("4.1.6", "5.1.6", "5.7.17", "5.7.18"),
    phrases=(
        " has been replaced by ",
        "user has moved",
        "address has moved",
        "mailbox has moved",
    ),
    hard=True,
)
