"""Apple iCloud Mail (icloud.com, me.com): documented rejection sentences (support.apple.com/102322)."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-apple",)
DOMAINS = ("icloud.com", "me.com", "apple.com")
HOSTS = (".mail.icloud.com", ".apple.com", ".me.com")
_PHRASES = (
    ("s dmarc policy", "authfailure"),
    ("blocked for failing both spf and dkim autentication checks", "authfailure"),
    ("blocked for failing both spf and dkim authentication checks", "authfailure"),
    ("rejected due to having a domain present in the spamhaus", "blocked"),
    ("rejected due to listing in spamhaus", "blocked"),
    ("blocked - see https://support.proofpoint.com/dnsbl-lookup", "blocked"),
    ("not accepting connections", "blocked"),
    ("recipient no longer on server", "hasmoved"),
    ("user is over quota", "mailboxfull"),
    ("relay access denied", "norelaying"),
    ("host/domain does not accept mail", "notaccept"),
    ("due to local policy", "policyviolation"),
    ("sender address rejected", "rejected"),
    ("due to excessive volume", "speeding"),
    ("inactive email address", "userunknown"),
    ("user does not exist", "userunknown"),
    ("unknown or illegal alias", "userunknown"),
)


def reason(hit: Hit) -> str:
    low = hit.diagnostic.lower()
    return next((r for phrase, r in _PHRASES if phrase in low), "")
