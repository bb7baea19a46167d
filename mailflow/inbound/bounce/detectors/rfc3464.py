"""Generic RFC 3464 DSN: message/delivery-status parts (any MTA family).

Fills a missing diagnostic from the human-readable notice when the notice
mentions the recipient, since several MTAs put the remote reply only there.
A gateway that returns someone else's report as its "original message" (a
multipart/report inside message/rfc822) and lists nothing itself gets that
inner report read instead.
"""

from __future__ import annotations

from mailflow.inbound.bounce.context import Context, build
from mailflow.inbound.bounce.dsn import FIELD_RE, Block, field_blocks, hits_from_blocks, prefer_status
from mailflow.inbound.bounce.mailtext import collapse, find_reply_code, find_status
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.textblocks import smtp_command

NAME = "rfc3464"
FAMILIES: tuple[str, ...] = ()


def detect(ctx: Context) -> list[Hit] | None:
    blocks = ctx.dsn_blocks or embedded_blocks(ctx.notice)
    if not blocks:
        return _wrapped_report(ctx)
    hits = hits_from_blocks(blocks)
    for hit in hits:
        fill_from_notice(hit, ctx.notice)
    return hits or None


def _wrapped_report(ctx: Context) -> list[Hit] | None:
    inner = ctx.original
    if inner is None or inner.get_content_type() != "multipart/report":
        return None
    nested = build(inner, str(inner.get("Subject") or ""), str(inner.get("From") or ""))
    return detect(nested) if nested.dsn_blocks else None


def fill_from_notice(hit: Hit, notice: str) -> None:
    """Borrow diagnostic/command from the notice paragraph that names the recipient."""
    para = paragraph_about(notice, hit.address)
    if not hit.command:
        hit.command = smtp_command(para) or smtp_command(notice[:8000])
    if hit.diagnostic or not para or _is_dsn_fields(para):
        return
    hit.diagnostic = collapse(para)
    hit.status = prefer_status(hit.status, find_status(para))
    hit.reply_code = hit.reply_code or find_reply_code(para)


def _is_dsn_fields(text: str) -> bool:
    """A paragraph of pasted DSN fields repeats what the blocks said; it is no diagnostic."""
    low = text.lower()
    return "final-recipient:" in low or "original-recipient:" in low


def paragraph_about(notice: str, address: str) -> str:
    low = notice.lower()
    idx = low.find(address)
    if idx < 0:
        return ""
    start = low.rfind("\n\n", 0, idx)
    end = low.find("\n\n", idx + len(address))
    if end < 0:
        end = len(notice)
    para = notice[start + 1 if start >= 0 else 0 : end]
    if len(para.strip()) <= len(address) + 4:
        # address alone on its paragraph: the reason follows in the next one
        nxt = low.find("\n\n", end + 2)
        para = notice[end : nxt if nxt > 0 else len(notice)]
    return para[:2000]


_RCPT_FIELDS = ("final-recipient:", "original-recipient:")


def embedded_blocks(notice: str) -> list[Block]:
    """DSN fields pasted into a text notice, blocks split at each new recipient."""
    low = notice.lower()
    if "final-recipient:" not in low or "action:" not in low:
        return []
    lines: list[str] = []
    seen_final = False
    for line in notice[low.find("reporting-mta:") if "reporting-mta:" in low else 0 :].split("\n"):
        low_line = line.strip().lower()
        if low_line.startswith(_RCPT_FIELDS):
            if seen_final and (
                low_line.startswith("original-recipient:") or low_line.startswith("final-recipient:")
            ):
                lines.append("")
                seen_final = False
            seen_final = seen_final or low_line.startswith("final-recipient:")
        lines.append(line.strip() if FIELD_RE.match(line.strip()) else line)
    return [b for b in field_blocks("\n".join(lines)) if "final-recipient" in b or "original-recipient" in b]
