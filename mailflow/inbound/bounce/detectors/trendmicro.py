"""Trend Micro InterScan Messaging Security Suite (now Trend Vision One) notices.

Lines name the recipient in angle brackets: "Unable to deliver message to <addr>"
(the gateway's own verdict: no such recipient behind it), or a relayed session
"Sent <<< RCPT TO:<addr>" / "Received >>> 550 5.1.1 <addr>... user unknown".
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.mailtext import clean_address
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import command_in, make_hit

NAME = "trendmicro"
FAMILIES: tuple[str, ...] = ("lhost-trendmicro",)
_BRACKETED = lazy(r"<([^\s<>]+@[^\s<>]+)>")


def recognises(ctx: Context) -> bool:
    if ctx.from_.lstrip().lstrip('"').lower().startswith("interscan"):
        return True
    if "interscan" in ctx.header("Content-Type").lower():
        return True
    return " interscan " in ctx.head_lower[:4000]


def detect(ctx: Context) -> list[Hit] | None:
    if not recognises(ctx):
        return None
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in ctx.notice[:20000].split("\n"):
        line = line.strip()
        addrs = _BRACKETED.findall(line)
        if addrs and ("<<<" in line or ">>>" in line or "Unable to deliver " in line):
            addr = clean_address(addrs[-1])
            current = found.setdefault(addr, {"diag": "", "command": ""})
            if "Unable to deliver " in line:
                current["diag"] = line
        if current is None:
            continue
        if line.startswith("Sent <<< ") or (">>>" in line and not line.startswith("Received")):
            current["command"] = command_in(line)
        elif line.startswith("Received >>> "):
            current["diag"] = line[len("Received >>> ") :]
    hits = []
    for addr, facts in found.items():
        hit = make_hit(addr, facts["diag"], command=facts["command"])
        if "unable to deliver" in hit.diagnostic.lower():
            hit.reason = "userunknown"  # the gateway knows no such recipient behind it
        hits.append(hit)
    return hits or None
