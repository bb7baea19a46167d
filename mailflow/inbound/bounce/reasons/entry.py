"""What one bounce reason is made of: its status codes, its phrases and the words that veto them.

A `Reason` is data; `reasons/<name>.py` holds one each.  `Catalogue` is the set the classifier
reads: every reason by name and every enhanced status code's reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
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
    # Short tokens documented outside the corpus, (word, where): they match like `words` and stay on.
    documented_words: tuple[tuple[str, str], ...] = ()
    # Permanent: mail to the address will not go through later either.
    hard: bool = False
    rule: Rule | None = field(default=None, compare=False)

    def matches(self, low: str, phrased: bool | None = None) -> bool:
        """Does lower-cased diagnostic `low` say this reason?  `phrased`: whether one of its phrases
        is in `low`, when the caller knows already (`Catalogue.phrased`)."""
        if not low:
            return False
        for phrase in self.unless:
            if phrase in low:
                return False
        if phrased is None:
            phrased = any(phrase in low for phrase in self.all_phrases)
        if phrased:
            return True
        for word in self.all_words:
            if word.strip() in low and standing_alone(low, word):
                return True
        for longest, parts in self._pairs_by_longest:  # noqa: SIM110 (a loop: no generator per call)
            if longest in low and in_order(low, parts):
                return True
        return False

    @property
    def documented_phrases(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.documented)

    @cached_property
    def all_phrases(self) -> tuple[str, ...]:
        return self.phrases + self.documented_phrases

    @cached_property
    def all_words(self) -> tuple[str, ...]:
        return self.words + tuple(w for w, _ in self.documented_words)

    @cached_property
    def _pairs_by_longest(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each pair with its longest part: a cheap test that rules most pairs out."""
        return tuple((max(parts, key=len), parts) for parts in self.pairs)

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

    @cached_property
    def _phrase_index(self) -> tuple[dict[str, list[tuple[str, str, int]]], list[tuple[str, str]]]:
        """Every reason's phrases by the _GRAM-character piece in their middle (with its offset in the
        phrase; 729 different pieces for about 850 phrases, at most 7 phrases share one), and the
        phrases shorter than that. Built on first use, in well under a millisecond."""
        index: dict[str, list[tuple[str, str, int]]] = {}
        short: list[tuple[str, str]] = []
        for reason in self.reasons.values():
            for phrase in reason.all_phrases:
                if len(phrase) < _GRAM:
                    short.append((reason.name, phrase))
                    continue
                at = (len(phrase) - _GRAM) // 2
                index.setdefault(phrase[at : at + _GRAM], []).append((reason.name, phrase, at))
        return index, short

    def phrased(self, low: str) -> frozenset[str]:
        """The reasons one of whose phrases `low` contains: one pass over `low` for all of them, where
        asking each reason in turn costs one substring search per phrase (about 850)."""
        index, short = self._phrase_index
        found = {name for name, phrase in short if phrase in low}
        get = index.get
        for i in range(len(low) - _GRAM + 1):
            candidates = get(low[i : i + _GRAM])
            if candidates:
                for name, phrase, at in candidates:
                    if at <= i and low.startswith(phrase, i - at):
                        found.add(name)
        return frozenset(found)


_GRAM = 6
