"""Declarative description of a plain-text bounce format, shared by family modules.

A family module usually only says how to recognise its notices, where the
recipient list starts and ends and what an address line looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.inbound.bounce.context import Context
from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.patterns import LazyPattern, lazy
from mailflow.inbound.bounce.textblocks import between, hits_from_blocks, smtp_command, split_blocks

# "<addr>:" / "addr:" / "<addr>" alone / "addr" alone at line start (indent allowed).
ADDRESS_LINE = lazy(r"^\s*<?([^\s<>@]+@[^\s<>:]+?)>?:?\s*(?=$|\s)")


@dataclass(frozen=True)
class TextFormat:
    name: str
    markers: tuple[str, ...] = ()  # lower-case phrases in the notice that identify the family
    sender: LazyPattern | None = None  # From header pattern that identifies it too (with `subject`)
    subject: LazyPattern | None = None
    starts: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()
    address_line: LazyPattern = ADDRESS_LINE
    action: str = "failed"

    def recognises(self, ctx: Context) -> bool:
        low = ctx.head_lower
        if any(m in low for m in self.markers):
            return True
        if self.sender is None and self.subject is None:
            return False
        sender_ok = self.sender is None or bool(self.sender.search(ctx.from_))
        subject_ok = self.subject is None or bool(self.subject.search(ctx.subject))
        return sender_ok and subject_ok

    def region(self, ctx: Context) -> str:
        return between(ctx.notice, self.starts, self.ends)

    def detect(self, ctx: Context) -> list[Hit] | None:
        if not self.recognises(ctx):
            return None
        hits = hits_from_blocks(split_blocks(self.region(ctx), self.address_line), self.action)
        for hit in hits:
            hit.command = hit.command or smtp_command(hit.diagnostic)
        return hits or None
