"""KDDI au (ezweb.ne.jp / au.com): a bare "550 : User unknown" is its reception filter."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit

FAMILIES: tuple[str, ...] = ("rhost-kddi",)
DOMAINS = ("ezweb.ne.jp", "au.com")
HOSTS = (".ezweb.ne.jp", "msmx.au.com")


def reason(hit: Hit) -> str:
    low = hit.diagnostic.lower()
    if "550 : user unknown" in low:
        return "filtered"  # the filter answers without naming the address
    if ">: user unknown" in low:
        return "userunknown"
    return ""
