"""`speeding`: the sender is sending faster than the receiving side accepts (rate limits)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="speeding",
    documented=(
        ("receiving mail too quickly", "Gmail SMTP errors, 450 4.2.1 ('... is receiving mail too quickly')"),
        (
            "receiving mail at a rate that prevents additional messages from being delivered",
            "Gmail SMTP errors, 450 4.2.1 / 550 5.2.1",
        ),
    ),
    phrases=(
        "please try again slower",
        "rate limited",
        "ratelimit",
        "rate limit",
        "sending too fast",
        "too many messages",
    ),
)
