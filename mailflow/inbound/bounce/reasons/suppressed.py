"""`suppressed`: the sending service's suppression list holds the address."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="suppressed",
    phrases=(
        "suppression list",
        "is on the suppression list",
    ),
)
