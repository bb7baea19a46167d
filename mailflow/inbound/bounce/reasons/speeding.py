"""`speeding`: the sender is sending faster than the receiving side accepts (rate limits)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="speeding",
    phrases=(
        "please try again slower",
        "receiving mail at a rate that prevents additional messages from being delivered",
        "rate limited",
        "ratelimit",
        "rate limit",
        "sending too fast",
        "too many messages",
    ),
)
