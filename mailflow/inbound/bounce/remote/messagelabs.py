"""Symantec/Broadcom Email Security.cloud (MessageLabs): documented NDR sentences."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-messagelabs",)
DOMAINS = ("messagelabs.com",)
HOSTS = (".messagelabs.com",)
# Case matters in their texts ("Message Filtered" is theirs; "message filtered" elsewhere is not)
_PHRASES = (
    ("domain authentication fail", "authfailure"),
    ("Connection rejected by policy", "badreputation"),
    ("mail rejected because your IP is in the PBL", "blocked"),
    ("your IP address has been ", "blocked"),
    ("Stray linefeeds in message", "contenterror"),
    ("TLS/SSLv3 Connection required", "failedstarttls"),
    (" as a relay, ", "norelaying"),
    ("550 Requested action aborted [4]", "notcompliantrfc"),
    ("has detected that this message is not RFC 5322", "notcompliantrfc"),
    ("sender envelope domain not allowed for sender IP address", "rejected"),
    ("your domain has been blocked", "rejected"),
    ("your email address has been blocked", "rejected"),
    ("your envelope sender is in my badmailfrom list", "rejected"),
    ("your email address has been blacklisted", "rejected"),
    ("your domain has been blacklisted", "rejected"),
    ("Please turn on SMTP Authentication in your mail client", "securityerror"),
    ("Message Filtered", "spamdetected"),
    ("filtered by Outbound scanning", "spamdetected"),
    ("Too many recipients received this hour", "toomanyconn"),
    ("too many messages", "toomanyconn"),
    ("No such user", "userunknown"),
    ("Invalid recipient", "userunknown"),
    ("mailbox is not allowed", "userunknown"),
)


def reason(hit: Hit) -> str:
    return next((r for phrase, r in _PHRASES if phrase in hit.diagnostic), "")
