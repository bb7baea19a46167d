"""Tencent QQ Mail: documented rejection phrases (service.mail.qq.com/detail/122)."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-tencent",)
DOMAINS = ("qq.com", "foxmail.com")
HOSTS = (".qq.com",)
_PHRASES = (
    ("spf check failed", "authfailure"),
    ("dmarc check failed", "authfailure"),
    ("suspected bounce attacks", "blocked"),
    ("suspected spam ip", "blocked"),
    ("connection denied", "blocked"),
    ("message too large", "mesgtoobig"),
    ("mail is rejected by recipients", "rejected"),
    ("spam is embedded in the email", "spamdetected"),
    ("mail content denied", "spamdetected"),
    ("suspected spam", "rejected"),
    ("mailbox unavailable or access denined", "speeding"),
    ("frequency of receiving messages is limited", "speeding"),
    ("is a deactivated mailbox", "suspend"),
    ("bad address syntax", "syntaxerror"),
    ("ip frequency limited", "toomanyconn"),
    ("domain frequency limited", "toomanyconn"),
    ("sender frequency limited", "toomanyconn"),
    ("connection frequency limited", "toomanyconn"),
    ("mailbox not found", "userunknown"),
)


def reason(hit: Hit) -> str:
    low = hit.diagnostic.lower()
    return next((r for phrase, r in _PHRASES if phrase in low), "")
