"""Cox Communications: "AUP#CXBL"-style codes, see Cox's postmaster error codes page."""

from __future__ import annotations

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy

FAMILIES: tuple[str, ...] = ("rhost-cox",)
DOMAINS = ("cox.net",)
HOSTS = ("cox.net",)
_CODE_RE = lazy(r"AUP#([A-Z]+)(\d*)")
_BY_PREFIX = {
    "CXBL": "blocked",
    "CDRBL": "blocked",
    "IPBL": "blocked",
    "CXDNS": "requireptr",
    "CXSNDR": "authfailure",
    "CXSMTP": "rejected",
    "CXCNCT": "toomanyconn",
    "CXMXRT": "toomanyconn",
    "CXTHRT": "securityerror",
    "CXMJ": "securityerror",
    "URLBL": "spamdetected",
}
_PHRASES = (
    ("too many bad commands from", "blocked"),
    ("too many invalid recipients", "blocked"),
    ("dns check failure - try again later", "requireptr"),
    ("rejected - no rdns", "requireptr"),
    ("esmtp no data before greeting", "policyviolation"),
    ("attachment extension is forbidden", "policyviolation"),
    ("esmtp server temporarily not available", "systemerror"),
    ("too many sessions from", "toomanyconn"),
    ("requested action aborted: try again later", "toomanyconn"),
    ("message threshold exceeded", "toomanyconn"),
    ("sender rejected", "rejected"),
    ("recipient rejected", "userunknown"),
)


def reason(hit: Hit) -> str:
    m = _CODE_RE.search(hit.diagnostic)
    if m and m.group(1) in _BY_PREFIX:
        return _BY_PREFIX[m.group(1)]
    low = hit.diagnostic.lower()
    return next((r for phrase, r in _PHRASES if phrase in low), "")
