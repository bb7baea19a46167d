"""Bounce parsing: which recipients failed, how (failed/delayed), why (Sisimai reasons).

`find_failures(ctx)` runs the detectors of `detectors.SELECTION` in order; the
first that recognises the mail wins, then each recipient is classified by
`reasons.classify`.  No I/O, no database.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.inbound.bounce.context import Context, build
from mailflow.inbound.bounce.detectors import SELECTION
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import lazy
from mailflow.inbound.bounce.reasons import classify, is_hard
from mailflow.inbound.bounce.textblocks import command_in, smtp_command

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
        reporting = reporting_host(ctx)
        return [_finish(h, name, reporting) for h in _dedupe(hits)]
    return None


def reporting_host(ctx: Context) -> str:
    """The host that wrote the bounce, as its delivery-status part names it (RFC 3464 Reporting-MTA).

    Only the structured field counts: a notice's From domain is often a relay or a whole provider.
    """
    for block in ctx.dsn_blocks:
        value = block.get("reporting-mta", "")
        if value:
            return value.partition(";")[2].strip().strip("[]").rstrip(".").lower()
    return ""


def _own_delivery(hit: Hit, reporting: str) -> bool:
    """The bounce's writer failed the delivery itself, to a mailbox of its own host: no remote MTA,
    no SMTP reply, no command, and the recipient's domain is the reporting host's name."""
    if hit.command or hit.rhost or hit.reply_code or not reporting:
        return False
    return hit.address.rpartition("@")[2] == reporting


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


_REPLY_HEAD_RE = lazy(r"[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3}\s+)?")


def _finish(hit: Hit, detector: str, reporting: str) -> Failure:
    if not hit.command:
        diagnostic = hit.diagnostic
        hit.command = smtp_command(diagnostic) or command_in(diagnostic) or _echoed_recipient(hit)
    if _own_delivery(hit, reporting):
        hit.command = "LOCAL"  # see reasons/userunknown.py
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
