"""Facebook: "RCP-P2"-style response codes (postmaster.facebook.com/response_codes)."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FAMILIES: tuple[str, ...] = ("rhost-facebook",)
DOMAINS = ("facebook.com",)
HOSTS = (".facebook.com",)
_CODE_RE = lazy(r"\b([A-Z]{3}-[PT]\d)\b")
_CODES = {
    "POL-P7": "authfailure",
    "POL-P1": "blocked",
    "POL-P2": "blocked",
    "POL-P3": "blocked",
    "POL-P4": "blocked",
    "POL-T1": "blocked",
    "POL-T2": "blocked",
    "POL-T3": "blocked",
    "MSG-P2": "contenterror",
    "RCP-P2": "filtered",
    "RCP-P3": "filtered",
    "MSG-P1": "mesgtoobig",
    "INT-P2": "mesgtoobig",
    "MSG-P3": "notcompliantrfc",
    "DNS-P1": "rejected",
    "DNS-P2": "rejected",
    "DNS-T1": "rejected",
    "DNS-P3": "requireptr",
    "DNS-T2": "requireptr",
    "POL-P6": "spamdetected",
    "RCP-T4": "suspend",
    "RCP-T1": "systemerror",
    "CON-T1": "toomanyconn",
    "CON-T2": "toomanyconn",
    "CON-T3": "toomanyconn",
    "CON-T4": "toomanyconn",
    "MSG-T1": "toomanyconn",
    "RCP-P1": "userunknown",
    "INT-P1": "userunknown",
    "INT-P3": "userunknown",
    "INT-P4": "userunknown",
    "POL-P5": "virusdetected",
}


def reason(hit: Hit) -> str:
    m = _CODE_RE.search(hit.diagnostic)
    return _CODES.get(m.group(1), "") if m else ""
