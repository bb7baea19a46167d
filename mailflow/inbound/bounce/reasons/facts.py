"""What the classifier knows about one failed recipient while it decides its reason.

`Facts.says(reason)` asks the catalogue whether the diagnostic carries one of that reason's phrases,
once per reason and recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from mailflow.inbound.bounce.model import Hit
from mailflow.inbound.bounce.reasons.entry import Catalogue

# Commands sent before DATA: a refusal there is about the session or an address, never the content.
BEFORE_DATA = frozenset({"CONN", "HELO", "EHLO", "MAIL", "RCPT"})


@dataclass
class Facts:
    hit: Hit
    catalogue: Catalogue
    low: str = ""  # the diagnostic, lower-cased
    by_status: str = ""  # the reason the enhanced status code names ('' if none)
    _said: dict[str, bool] = field(default_factory=dict)

    def says(self, reason: str) -> bool:
        found = self._said.get(reason)
        if found is None:
            entry = self.catalogue.reasons.get(reason)
            found = entry is not None and entry.matches(self.low, reason in self.phrased)
            self._said[reason] = found
        return found

    @cached_property
    def phrased(self) -> frozenset[str]:
        """The reasons whose phrases the diagnostic contains, found in one pass."""
        return self.catalogue.phrased(self.low)

    @property
    def temporary(self) -> bool:
        """A 4xx code or a delay report: the sending side will try again."""
        hit = self.hit
        return hit.status.startswith("4") or hit.reply_code.startswith("4") or hit.action == "delayed"
