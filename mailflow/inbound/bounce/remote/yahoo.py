"""Yahoo Inc. (yahoodns.net MX): documented rejection phrases (senders.yahooinc.com/smtp-error-codes)."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("lhost-yahoo",)
DOMAINS = ()
HOSTS = (".yahoodns.net",)
_PHRASES = (
    ("yahoo requires all senders to authenticate with either spf or dkim", "authfailure"),
    (" because the ip is in spamhaus's list;", "blocked"),
    ("not accepted from ip addresses on spamhaus xbl", "blocked"),
    ("relaying denied for ", "norelaying"),
    ("headers are not rfc compliant", "notcompliantrfc"),
    ("not accepted for policy reasons", "policyviolation"),
    ("temporarily deferred due to unexpected volume or user complaints", "rejected"),
    ("due to unresolvable rfc.5321 domain", "rejected"),
    (" will be permanently deferred", "rejected"),
    ("user is receiving mail too quickly", "speeding"),
    (" is no longer valid.", "suspend"),
    ("this mailbox is disabled", "suspend"),
    ("syntax error in parameters or arguments", "syntaxerror"),
    ("max message per connection reached", "toomanyconn"),
    ("dd this user doesn't have a ", "userunknown"),
    ("mailbox not found", "userunknown"),
)


def reason(hit: Hit) -> str:
    low = hit.diagnostic.lower()
    return next((r for phrase, r in _PHRASES if phrase in low), "")
