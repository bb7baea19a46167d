"""Bounce parsing: which recipients failed, how (failed/delayed), why (Sisimai reasons).

`find_failures(ctx)` runs the detectors of `detectors.SELECTION` in order; the
first that recognises the mail wins, then each recipient is classified by
`reasons.classify`.  No I/O, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailflow.inbound.bounce.context import Context, build
from mailflow.inbound.bounce.detectors import SELECTION
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.reasons import classify, is_hard
from mailflow.inbound.bounce.textblocks import command_in

__all__ = ["Context", "Failure", "Hit", "build", "find_failures"]


@dataclass(frozen=True)
class Failure:
    address: str
    action: str
    hard: bool
    reason: str
    status: str
    diagnostic: str
    reply_code: str
    detector: str


def find_failures(ctx: Context) -> list[Failure] | None:
    """Failed recipients of a bounce, or None when no detector recognises the mail."""
    for name, detect in SELECTION.current():
        hits = detect(ctx)
        if hits is None:
            continue
        return [_finish(h, name) for h in _dedupe(hits)]
    return None


def _dedupe(hits: list[Hit]) -> list[Hit]:
    by_addr: dict[str, Hit] = {}
    for hit in hits:
        if not hit.address or "@" not in hit.address:
            continue
        if hit.address in by_addr:
            by_addr[hit.address].merge(hit)
        else:
            by_addr[hit.address] = hit
    return list(by_addr.values())


def _echoed_recipient(hit: Hit) -> str:
    """A reply that starts "550 <a@b>... text" (sendmail's RCPT answer) was given to RCPT."""
    diag = hit.diagnostic.lower()
    m = _REPLY_HEAD_RE.match(diag)
    if m is None:
        return ""
    rest = diag[m.end() :].lstrip("<")
    # sendmail's answer to RCPT: "<addr>... User unknown"
    if not rest.startswith(hit.address):
        return ""
    return "RCPT" if rest[len(hit.address) :].lstrip(">").startswith("...") else ""


_REPLY_HEAD_RE = re.compile(r"[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3}\s+)?")


def _finish(hit: Hit, detector: str) -> Failure:
    if not hit.command:
        hit.command = command_in(hit.diagnostic) or _echoed_recipient(hit)
    reason = classify(hit)
    action = hit.action if hit.action in ("failed", "delayed") else "failed"
    return Failure(
        address=hit.address,
        action=action,
        hard=is_hard(reason, hit.status, hit.reply_code, action),
        reason=reason,
        status=hit.status,
        diagnostic=hit.diagnostic,
        reply_code=hit.reply_code,
        detector=detector,
    )
