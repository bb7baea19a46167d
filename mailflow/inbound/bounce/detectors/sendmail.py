"""Sendmail-style text notices (sendmail without a DSN part, V5 sendmail, ActiveHunter, X1-like).

Recipients come from the "addresses had ... errors" list and from transcript
lines "550 <addr>... text"; the remote reply for an address is the "<<<" text
that follows ">>> RCPT To:<addr>" in the session transcript.
"""

from __future__ import annotations

import re

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.mailtext import clean_address, collapse
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.textblocks import between, make_hit

NAME = "sendmail"
FAMILIES: tuple[str, ...] = ("lhost-sendmail", "lhost-v5sendmail", "lhost-activehunter", "lhost-x1")
_MARKERS = (
    "----- transcript of session follows -----",
    "the following addresses had permanent fatal errors",
    "the following addresses had delivery errors",
    "the following addresses had delivery problems",
    "---the following addresses had delivery errors---",
)
_ENDS = (
    "----- unsent message follows",
    "----- original message follows",
    "----- message header follows",
    "------ original message follows",
    "--- original message follows",
    "content-type: message/",
    "----- returned message follows",
)
_LIST_LINE = lazy(r"^\s*(?:>>>\s*)?<?([^\s<>@]+@[^\s<>]+?)>?(?:\s+<[^>]*>)?\s*(\(.*\)|\[.*\])?\s*$")
_TRANSCRIPT_LINE = lazy(r"^(\d{3})\s+<?([^\s<>@]+@[^\s<>]+?)>?\.\.\.\s*(.*)$")
_ORPHAN_RE = lazy(r"^(?:<<<\s*)?([45]\d\d[ -][^\n]*?)\s*$", re.M)
_RCPT_LINE = lazy(r"^>>>\s*RCPT\s+TO:\s*<?([^\s<>]+@[^\s<>]+?)>?\s*$", re.I)


def detect(ctx: Context) -> list[Hit] | None:
    low = ctx.head_lower
    if not any(m in low for m in _MARKERS):
        return None
    if "could not send mail for past" in ctx.subject.lower() or "warning--" in ctx.subject.lower():
        return []  # an early "still trying" warning, not a failure
    region = between(ctx.notice, ("",), _ENDS)
    found: dict[str, list[str]] = {}
    _from_list(region, found)
    commands = _from_transcript(region, found)
    if len(found) == 1:
        # a single recipient owns the transcript's reply lines even when they do not name it
        addr = next(iter(found))
        found[addr].extend(r for r in _ORPHAN_RE.findall(region) if r not in found[addr])
    hits = [
        make_hit(addr, " ".join(p for p in parts if p), command=commands.get(addr, ""))
        for addr, parts in found.items()
    ]
    if "---the following addresses had delivery errors---" in low:
        for hit in hits:
            hit.command = "DATA"  # this gateway family reports content/sender filtering this way
    if "warning" in ctx.subject.lower():
        for hit in hits:
            hit.action = "delayed"
    return hits or None


def _from_list(region: str, found: dict[str, list[str]]) -> None:
    low = region.lower()
    idx = max(low.find("addresses had"), low.find("address(es) had"))
    if idx < 0:
        return
    for line in region[idx:].split("\n")[1:40]:
        if "-----" in line and found:
            break
        m = _LIST_LINE.match(line)
        if m:
            note = (m.group(2) or "").strip("()[]")
            found.setdefault(clean_address(m.group(1)), []).append(note)


def _from_transcript(region: str, found: dict[str, list[str]]) -> dict[str, str]:
    """Collect reply lines per recipient; return the command each first error answered."""
    current, last_cmd = "", ""
    replies: list[str] = []
    commands: dict[str, str] = {}
    for line in region.split("\n"):
        rcpt = _RCPT_LINE.match(line)
        if rcpt:
            current, replies, last_cmd = clean_address(rcpt.group(1)), [], "RCPT"
            continue
        if line.startswith(">>>"):
            last_cmd = line[3:].strip().split(" ")[0].upper()
            continue
        if line.startswith("<<<") and current:
            reply = line[3:].strip()
            replies.append(reply)
            found.setdefault(current, []).append(reply)
            if reply[:1] in ("4", "5") and current not in commands:
                # a reply that echoes an address answers a RCPT even when pipelined before DATA
                commands[current] = "RCPT" if "@" in reply else last_cmd
            continue
        m = _TRANSCRIPT_LINE.match(line)
        if m:
            addr = clean_address(m.group(2))
            found.setdefault(addr, []).append(collapse(f"{m.group(1)} {m.group(3)}"))
            if replies and not current:
                found[addr][:0] = replies
        elif line.lower().startswith("while talking to"):
            current, replies = "", []
        elif line.startswith("<<<"):
            replies.append(line[3:].strip())
    return commands
