"""Orange / Wanadoo / La Poste: "OFR_506", "LPN007_416" labels whose last digits name the cause."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FAMILIES: tuple[str, ...] = ("rhost-franceptt",)
DOMAINS = ("orange.fr", "wanadoo.fr", "laposte.net")
HOSTS = (".laposte.net", ".orange.fr", ".wanadoo.fr")
_LABEL_RE = lazy(r"\b(?:LPNAAA|LPN|OFR|OUK)\d*[_-]?(\d{3})\b", re.I)
_CODES = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "toomanyconn",
    "305": "securityerror",
    "401": "authfailure",
    "402": "securityerror",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "userunknown",
    "417": "mailboxfull",
    "420": "suspend",
    "421": "rejected",
    "426": "suspend",
    "505": "systemerror",
    "506": "spamdetected",
    "510": "blocked",
    "514": "mesgtoobig",
    "517": "authfailure",
    "630": "policyviolation",
    "999": "blocked",
}


def reason(hit: Hit) -> str:
    found = _LABEL_RE.findall(hit.diagnostic)
    if found:
        return _CODES.get(found[-1], "")
    if "spf/dns de votre nom de domaine" in hit.diagnostic.lower():
        return "authfailure"
    return ""
