"""`failedstarttls`: STARTTLS was required but could not be set up."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="failedstarttls",
    phrases=(
        "starttls",
        "tls negotiation",
    ),
)
