"""What one bounce reason is made of: its status codes, its phrases and the words that veto them.

A `Reason` is data; `reasons/<name>.py` holds one each.  `Catalogue` is the set the classifier
reads: every reason by name and every enhanced status code's reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailflow.inbound.bounce.reasons.facts import Facts

# A reason's own rule for the first pass: True/False decides, None leaves it to the default
# ("the status code names it, or the text says it").
Rule = Callable[["Facts"], "bool | None"]


@dataclass(frozen=True)
class Reason:
    name: str
    # Enhanced status codes (RFC 3463, IANA registry) that name this reason.
    codes: tuple[str, ...] = ()
    # Lower-case substrings of a diagnostic that say this reason.
    phrases: tuple[str, ...] = ()
    # Short tokens that only count standing alone ("uce" is not "produce").
    words: tuple[str, ...] = ()
    # Parts that must all appear, in this order ("user ", " does not exist").
    pairs: tuple[tuple[str, ...], ...] = ()
    # Phrases that look like this reason's but mean something else: a match is void when one is there.
    unless: tuple[str, ...] = ()
    # Phrases documented outside the corpus: (phrase, where: an RFC, an MTA's source, a vendor's page).
    # They match like `phrases`, and the leave-one-family-out measurement never switches them off.
    documented: tuple[tuple[str, str], ...] = ()
    # Permanent: mail to the address will not go through later either.
    hard: bool = False
    rule: Rule | None = field(default=None, compare=False)

    def matches(self, low: str) -> bool:
        """Does lower-cased diagnostic `low` say this reason?"""
        if not low:
            return False
        for phrase in self.unless:
            if phrase in low:
                return False
        for phrase in self.phrases:
            if phrase in low:
                return True
        for phrase, _ in self.documented:
            if phrase in low:
                return True
        for word in self.words:
            if word.strip() in low and standing_alone(low, word):
                return True
        return any(in_order(low, parts) for parts in self.pairs)

    @property
    def documented_phrases(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.documented)

    def without(self, phrases: Iterable[str]) -> Reason:
        """This reason without some of its phrases, words or pairs (named by `pair_key`)."""
        gone = frozenset(phrases)
        return replace(
            self,
            phrases=tuple(p for p in self.phrases if p not in gone),
            words=tuple(w for w in self.words if w not in gone),
            pairs=tuple(p for p in self.pairs if pair_key(p) not in gone),
        )


def standing_alone(text: str, word: str) -> bool:
    return re.search(r"(?<![a-z])" + re.escape(word.strip()) + r"(?![a-z])", text) is not None


def in_order(text: str, parts: tuple[str, ...]) -> bool:
    """All of `parts` appear in `text`, one after the other."""
    pos = 0
    for part in parts:
        idx = text.find(part, pos)
        if idx < 0:
            return False
        pos = idx + len(part)
    return True


def pair_key(parts: tuple[str, ...]) -> str:
    """How a pair is named where phrases are listed (leave-one-family-out): its parts joined by '…'."""
    return "…".join(parts)


@dataclass(frozen=True)
class Catalogue:
    reasons: dict[str, Reason]
    by_code: dict[str, str]

    @classmethod
    def of(cls, reasons: Iterable[Reason]) -> Catalogue:
        by_name: dict[str, Reason] = {}
        by_code: dict[str, str] = {}
        for reason in reasons:
            by_name[reason.name] = reason
            for code in reason.codes:
                if code in by_code:
                    raise ValueError(f"status {code} is claimed by {by_code[code]} and {reason.name}")
                by_code[code] = reason.name
        return cls(by_name, by_code)

    def says(self, reason: str, low: str) -> bool:
        entry = self.reasons.get(reason)
        return entry is not None and entry.matches(low)
