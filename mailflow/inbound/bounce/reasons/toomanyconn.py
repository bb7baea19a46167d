"""`toomanyconn`: too many connections or recipients at once (RFC 3463 x.5.3 and connection limits)."""

from __future__ import annotations

from mailflow.inbound.bounce.reasons.entry import Reason

REASON = Reason(
    name="toomanyconn",
    codes=("5.5.3",),
    documented=(
        (
            "frequency limited",
            "Tencent QQ Mail's rejection reference (service.mail.qq.com/detail/122): 'IP / domain / "
            "sender / connection frequency limited', a rate limit on the sending side",
        ),
        (
            "too many connections",
            "Postfix smtpd/postscreen: '421 4.7.0 Error: too many connections from ...'",
        ),
        (
            "too many recipients",
            "RFC 3463 X.5.3 'Too many recipients'; Postfix '452 4.5.3 Error: too many recipients'",
        ),
    ),
    phrases=(
        "all available ips are at maximum connection limit",
        "connection rate limit exceeded",
        "exceeds per-domain connection limit for",
        "has exceeded the max emails per hour ",
        "throttling failure: daily message quota exceeded",
        "throttling failure: maximum sending rate exceeded",
        "too many connections from your host.",
        "too many concurrent smtp connections",
        "too many errors from your ip",
        "too many smtp sessions for this host",
        "trop de connexions, ",
        "we have already made numerous attempts to deliver this message",
        "too many simultaneous connections",
    ),
)
