"""au by KDDI's EZweb mail (ezweb.ne.jp / au.com) notices.

Recognised by at least two of: Postmaster@ezweb.ne.jp / Postmaster@au.com as sender,
the fixed subject "Mail System Error - Returned Mail", an "(EZweb Mail)" Received
line, an ezweb/au Message-ID.  A cause sentence ("The user(s) account is
disabled.") precedes "<address>" or "Recipient: <address>" lines, optionally with
a ">>> RCPT TO" / "<<< 550 ..." transcript.  "X-SPASIGN: NG" marks the
recipient's spam filter.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.dsn import hits_from_blocks
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import command_in, make_hit

NAME = "ezweb"
FAMILIES: tuple[str, ...] = ("lhost-ezweb",)
_SENDER = lazy(r"postmaster@(?:ezweb\.ne\.jp|au\.com)\b", re.I)
_MSGID = lazy(r"\.(?:ezweb\.ne\.jp|au\.com)>", re.I)
_RCPT_LINE = lazy(r"^\s*(?:Recipient:\s*)?<([^\s<>]+@[^\s<>]+)>:?\s*(.*)$", re.I)
_STARTS = ("the user(s) ", "your message ", "each of the following", "<")
_ENDS = ("-------------------------------------------------", "content-type: message/rfc822")
# cause sentence -> reason ("" = let the general classifier decide from the reply)
_CAUSES = (
    ("your message was not delivered within ", "expired"),
    ("the user(s) account is temporarily over quota", "mailboxfull"),
    ("the user(s) account is disabled.", "suspend"),
    ("the user(s) account is temporarily limited.", "suspend"),
)


def recognises(ctx: Context) -> bool:
    votes = int(bool(_SENDER.search(ctx.from_)))
    votes += ctx.subject.strip() == "Mail System Error - Returned Mail"
    votes += bool(_MSGID.search(ctx.header("Message-ID")))
    if votes != 1:
        return votes >= 2  # the Received fields (the dearest to read) cannot change the answer
    received = " ".join(ctx.header_all("Received"))
    return "(EZweb Mail) with" in received or ".au.com (" in received


def detect(ctx: Context) -> list[Hit] | None:
    if not recognises(ctx):
        return None
    per_addr: dict[str, list[str]] = {}
    intro: list[str] = []
    reading, current = False, ""
    for line in ctx.notice[:20000].split("\n"):
        low = line.strip().lower()
        if any(low.startswith(e) for e in _ENDS):
            break
        if not reading and not low.startswith(_STARTS):
            continue
        reading = True
        if not low:
            continue
        m = _RCPT_LINE.match(line)
        if m:
            current = m.group(1).lower()
            per_addr.setdefault(current, []).append(line.strip())
        elif current:
            per_addr[current].append(line.strip())
        else:
            intro.append(line.strip())
    hits = hits_from_blocks(ctx.dsn_blocks) if ctx.dsn_blocks else []
    if not hits:
        hits = [make_hit(addr, "") for addr in per_addr]
    spam_filter = ctx.header("X-SPASIGN").strip().upper() == "NG"
    for hit in hits:
        text = " ".join(intro + per_addr.get(hit.address, []))
        hit.diagnostic = " ".join(text.split()) or hit.diagnostic
        hit.command = hit.command or command_in(hit.diagnostic)
        hit.reason = "filtered" if spam_filter else _cause(hit)
    return hits or None


def _cause(hit: Hit) -> str:
    low = hit.diagnostic.lower()
    found = next((r for phrase, r in _CAUSES if phrase in low), "")
    if found:
        return found
    domain = hit.address.rpartition("@")[2]
    if domain not in ("ezweb.ne.jp", "au.com") and hit.diagnostic.startswith("<"):
        return "userunknown"  # a relayed recipient the other side did not know
    return ""
