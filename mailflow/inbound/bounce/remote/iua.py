"""I.UA (Ukraine): "https://mail.i.ua/err/N/" links whose number names the cause."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FAMILIES: tuple[str, ...] = ("rhost-iua",)
DOMAINS = ("email.ua",)
HOSTS = (".email.ua",)
_CODE_RE = lazy(r"\.i\.ua/err/(\d+)/", re.I)
_CODES = {
    "1": "norelaying",
    "2": "userunknown",
    "3": "suspend",
    "4": "mailboxfull",
    "5": "toomanyconn",
    "6": "norelaying",
    "7": "blocked",
    "8": "rejected",
    "9": "blocked",
    "10": "filtered",
}


def reason(hit: Hit) -> str:
    m = _CODE_RE.search(hit.diagnostic)
    return _CODES.get(m.group(1), "") if m else ""
