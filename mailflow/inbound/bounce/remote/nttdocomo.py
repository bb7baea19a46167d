"""NTT DOCOMO (docomo.ne.jp): "550 Unknown user" means a missing user at RCPT, a refusal after DATA."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-nttdocomo",)
DOMAINS = ("docomo.ne.jp",)
HOSTS = ("mfsmax.docomo.ne.jp",)
_PHRASES = (
    ("552 too much mail data", "mailboxfull"),
    ("503 bad sequence of commands", "syntaxerror"),
    ("504 command parameter not implemented", "syntaxerror"),
    ("552 too many recipients", "toomanyconn"),
)


def reason(hit: Hit) -> str:
    if hit.status in ("5.1.1",):
        return "userunknown"
    if hit.status == "5.2.0":
        return "filtered"
    low = hit.diagnostic.lower()
    found = next((r for phrase, r in _PHRASES if phrase in low), "")
    if found:
        return found
    if "550 unknown user" in low:
        if hit.command == "DATA":
            return "rejected"
        return "userunknown"
    return ""
