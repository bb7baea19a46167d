"""AOL (aol.com, mx.aol.com): DNS answers its relays give for the sender's side."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-aol",)
DOMAINS = ("aol.com",)
HOSTS = (".mail.aol.com", ".mx.aol.com")
_PHRASES = (
    ("Host or domain name not found", "hostunknown"),
    ("type=MX: Malformed or unexpected name server reply", "notaccept"),
)


def reason(hit: Hit) -> str:
    return next((r for phrase, r in _PHRASES if phrase in hit.diagnostic), "")
