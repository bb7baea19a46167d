"""fml mailing-list manager notices (X-MLServer header, "<list>-admin@" sender).

Each line naming an address in angle brackets opens a failure (the list or the
poster it refused); the sentence on it, else the subject ("Loop Alert: ...",
"NOT MEMBER article from ..."), names the reason.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, make_hit

NAME = "fml"
FAMILIES: tuple[str, ...] = ("lhost-fml",)
_ADDR = lazy(r"<([^\s<>]+@[^\s<>]+)>")
_BODY = (
    (" header may cause mail loop", "rejected"),
    ("not member article from ", "rejected"),
    ("reject mail from ", "rejected"),
    ("reject spammers:", "rejected"),
    ("you are not a member of this mailing list", "rejected"),
    ("security alert:", "securityerror"),
    (" has detected a loop condition so that", "systemerror"),
    ("loop back warning:", "systemerror"),
)
_SUBJECT = (
    (" are not member", "rejected"),
    ("not member article from ", "rejected"),
    ("reject mail ", "rejected"),
    ("spam mail from a spammer is rejected", "rejected"),
    ("fml system error message", "systemerror"),
    ("loop alert: ", "systemerror"),
    ("loop back warning: ", "systemerror"),
    ("warning: unix from loop", "systemerror"),
    ("security alert", "securityerror"),
)


def detect(ctx: Context) -> list[Hit] | None:
    if not (ctx.header("X-MLServer") or ctx.header("X-ML-Server")) or "-admin@" not in ctx.from_lower:
        return None
    notice = between(ctx.notice, ("",), ("original mail as follows:",))
    found: list[tuple[str, list[str]]] = []
    for line in notice.split("\n"):
        line = line.strip()
        if not line:
            continue
        m = _ADDR.search(line)
        if m:
            found.append((m.group(1), [line]))
        elif found:
            found[-1][1].append(line)
    subject = ctx.subject.lower()
    hits = []
    for addr, lines in found:
        hit = make_hit(addr, " ".join(lines))
        low = hit.diagnostic.lower()
        hit.reason = next((r for phrase, r in _BODY if phrase in low), "") or next(
            (r for phrase, r in _SUBJECT if phrase in subject), ""
        )
        hits.append(hit)
    return hits or None
