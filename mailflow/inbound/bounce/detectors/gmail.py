"""Gmail / Google Groups text notices ("Delivery to the following recipient failed permanently")."""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.reasons import status_reason
from mailflow.inbound.bounce.textblocks import between, first_address_in, make_hit

NAME = "gmail"
FAMILIES: tuple[str, ...] = ("lhost-gmail", "lhost-googlegroups")
_INTRO = lazy(
    r"delivery to the following recipients? (failed permanently|has been delayed|failed)", re.I
)
_ADDR = lazy(r"^\s+<?([^\s<>@]+@[^\s<>]+?)>?\s*$", re.M)


def detect(ctx: Context) -> list[Hit] | None:
    if "google" not in ctx.from_lower and "google" not in ctx.head_lower[:6000]:
        return None
    intro = _INTRO.search(ctx.notice[:6000])
    if intro is None:
        return _groups(ctx)
    action = "delayed" if "delayed" in intro.group(1) else "failed"
    region = between(
        ctx.notice[intro.end() :], ("",), ("----- original message -----", "----- message header follows")
    )
    addrs = [m.group(1) for m in _ADDR.finditer(region.split("\n\n\n")[0] if False else region)]
    tech = region.lower().find("technical details")
    diag = region[tech:] if tech >= 0 else region
    addrs = [a for a in addrs if region.find(a) < (tech if tech >= 0 else len(region))]
    hits = [make_hit(a, diag, action) for a in dict.fromkeys(addrs)]
    for hit in hits:
        _gmail_verdict(hit)
    return hits or None


# Gmail's own "(state N)" suffix names the SMTP stage the remote server refused at.
_STATES = {
    "6": ("MAIL", "failedstarttls"),
    "8": ("AUTH", "systemerror"),
    "9": ("AUTH", "failedstarttls"),
    "12": ("AUTH", "norelaying"),
    "13": ("EHLO", "blocked"),
    "14": ("RCPT", "userunknown"),
    "15": ("DATA", "filtered"),
    "17": ("DATA", "filtered"),
    "18": ("DATA", "filtered"),
}
_STATE_RE = lazy(r"\(state (\d+)\)")
_MESSAGES = (
    ("dns error: could not contact dns servers", "expired"),
    ("delivery to the following recipient has been delayed", "expired"),
    ("the recipient server did not accept our requests to connect", "expired"),
    ("dns error: domain name not found", "hostunknown"),
    ("dns error: dns server returned answer with no data", "hostunknown"),
)


def _gmail_verdict(hit: Hit) -> None:
    """State code first, then Gmail's own sentences; a specific status code has the last word."""
    m = _STATE_RE.search(hit.diagnostic)
    if m and m.group(1) in _STATES:
        hit.command, hit.reason = _STATES[m.group(1)]
    if not hit.reason:
        low = hit.diagnostic.lower()
        hit.reason = next((r for phrase, r in _MESSAGES if phrase in low), "")
    if hit.reason and hit.status and ".0" not in hit.status:  # x.0.y and x.y.0 are too vague
        hit.reason = status_reason(hit.status) or hit.reason


def _groups(ctx: Context) -> list[Hit] | None:
    """Google Groups: the notice names no recipient; report the group (To of the original)."""
    if "google groups" not in ctx.notice_lower and "groups.google" not in ctx.notice_lower:
        return None
    addr = ""
    if ctx.original is not None:
        addr = first_address_in(str(ctx.original.get("To") or ""))
    if not addr:
        after = between(ctx.notice, ("----- original message -----",), ())
        m = re.search(r"^To:\s*(.*)$", after, re.M | re.I)
        addr = first_address_in(m.group(1)) if m else ""
    if not addr:
        return None
    return [make_hit(addr, between(ctx.notice, ("",), ("----- original message -----",)), reason="rejected")]
