"""Spectrum / Charter: "AUP#I-1310" four-digit codes (Spectrum's e-mail error code page)."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FAMILIES: tuple[str, ...] = ("rhost-spectrum",)
DOMAINS = ("charter.net", "spectrum.net")
HOSTS = ("charter.net",)
_CODE_RE = lazy(r"AUP#\D{0,4}(\d{4})")
# (first, last, reason): code ranges from the provider's table
_RANGES = (
    (1000, 1000, "blocked"),
    (1010, 1080, "rejected"),
    (1090, 1090, "systemerror"),
    (1100, 1150, "requireptr"),
    (1160, 1190, "policyviolation"),
    (1200, 1250, "blocked"),
    (1260, 1260, "networkerror"),
    (1300, 1340, "toomanyconn"),
    (1350, 1490, "speeding"),
    (1500, 1520, "rejected"),
    (1530, 1530, "mesgtoobig"),
    (1540, 1550, "speeding"),
    (1560, 1560, "policyviolation"),
    (1580, 1580, "speeding"),
)


def reason(hit: Hit) -> str:
    m = _CODE_RE.search(hit.diagnostic)
    if m is None:
        return ""
    code = int(m.group(1))
    return next((r for lo, hi, r in _RANGES if lo <= code <= hi), "")
