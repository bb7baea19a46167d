"""`virusdetected`: a virus was found in the message."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="virusdetected",
    phrases=(
        "it has a potentially executable attachment",
        "message was rejected because it contains a virus",
        "virus detected",
        "virus found",
        "infected with",
        "contains a virus",
        "malware",
        "the message was rejected because it contains prohibited virus or spam content",
        "this form of attachment has been used by recent viruses or other malware",
        "your message was infected with a virus",
    ),
)
