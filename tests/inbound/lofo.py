"""Leave-one-family-out (LOFO): each corpus family measured with rules that never saw its files.

The development corpus names each mail's family in its file name (`lhost-postfix-07.eml` ->
`lhost-postfix`). To measure a family F as if its mails were new:

- detectors and provider rules list the families they were written from (`FAMILIES`); those naming
  F are switched off, so F's mails go through the generic readers (RFC 3464, the plain-text reader);
- a reason phrase counts as learned from F when F's mails are the only corpus mails that contain it
  (in their notice text, DSN fields or diagnostics) and no document outside the corpus is cited for
  it (`Reason.documented`); those phrases are switched off too.

Status codes (RFC 3463, the IANA registry, RFC 5321) are standards, not learned from any file, and
stay on. The figure is pessimistic for families whose detector was written from the MTA's own
documentation, and that is the point: it is what a bounce from an MTA we have never seen gets.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

from mailflow.inbound import analysis
from mailflow.inbound.bounce import context, detectors, remote
from mailflow.inbound.bounce.reasons import catalogue
from mailflow.inbound.bounce.reasons.entry import Catalogue, Reason, in_order, pair_key
from tests.inbound.corpus import Score, load_expected, score_file

_NUMBERED = re.compile(r"-\d+\.eml$")


def family_of(name: str) -> str:
    return _NUMBERED.sub("", name)


def _mail_text(raw: bytes) -> str:
    """Everything of one mail a phrase could have been learned from, lower-cased."""
    raw = raw.replace(b"\r\n", b"\n")
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    subject = analysis.header_text(msg, "Subject")
    ctx = context.build(msg, subject, analysis.header_text(msg, "From"))
    fields = " ".join(v for block in ctx.dsn_blocks for v in block.values())
    diagnostics = " ".join(r.diagnostic for r in analysis.analyze(raw).recipients)
    return " ".join((subject, ctx.notice, fields, diagnostics)).lower()


def _keys(reason: Reason) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Each phrase, word and pair of a reason as (name, parts that must appear in order)."""
    for phrase in reason.phrases:
        yield phrase, (phrase,)
    for word in reason.words:
        yield word, (word.strip(),)
    for parts in reason.pairs:
        yield pair_key(parts), parts


@dataclass
class Provenance:
    """Which corpus families each undocumented phrase occurs in."""

    families: dict[str, frozenset[str]] = field(default_factory=dict)  # phrase key -> families

    @classmethod
    def of(cls, directory: Path, names: list[str]) -> Provenance:
        texts: dict[str, list[str]] = {}
        for name in names:
            texts.setdefault(family_of(name), []).append(_mail_text((directory / name).read_bytes()))
        joined = {fam: "\n\x00\n".join(parts) for fam, parts in texts.items()}
        found: dict[str, frozenset[str]] = {}
        for reason in catalogue.FULL.reasons.values():
            documented = set(reason.documented_phrases)
            for key, parts in _keys(reason):
                if key in documented:
                    continue
                found[key] = frozenset(f for f, text in joined.items() if in_order(text, parts))
        return cls(found)

    def learned_only_from(self, family: str) -> frozenset[str]:
        return frozenset(k for k, fams in self.families.items() if fams == {family})


@contextmanager
def leaving_out(family: str, provenance: Provenance) -> Iterator[None]:
    """Parse with everything learned from `family` switched off."""
    gone = provenance.learned_only_from(family)
    kept_detectors = tuple(m for m in detectors.MODULES if family not in m.FAMILIES)
    kept_providers = tuple(m for m in remote.MODULES if family not in m.FAMILIES)
    smaller = Catalogue.of(r.without(gone) for r in catalogue.FULL.reasons.values())
    with ExitStack() as stack:
        stack.enter_context(detectors.SELECTION.using(detectors.detectors_of(kept_detectors)))
        stack.enter_context(remote.SELECTION.using(kept_providers))
        stack.enter_context(catalogue.SELECTION.using(smaller))
        yield


@dataclass
class LofoResult:
    whole: Score
    left_out: Score
    by_family: dict[str, tuple[Score, Score]]  # family -> (whole-corpus rules, rules without it)
    switched_off: dict[str, int]  # family -> phrases switched off


def measure(directory: Path) -> LofoResult:
    expected = load_expected(directory)
    names = sorted(expected)
    provenance = Provenance.of(directory, names)
    whole, left_out = Score(), Score()
    by_family: dict[str, tuple[Score, Score]] = {}
    switched: dict[str, int] = {}
    for fam in sorted({family_of(n) for n in names}):
        members = [n for n in names if family_of(n) == fam]
        fam_whole, fam_out = Score(), Score()
        for name in members:
            raw = (directory / name).read_bytes()
            got = analysis.analyze(raw)
            score_file(whole, name, expected[name], got)
            score_file(fam_whole, name, expected[name], got)
        with leaving_out(fam, provenance):
            for name in members:
                got = analysis.analyze((directory / name).read_bytes())
                score_file(left_out, name, expected[name], got)
                score_file(fam_out, name, expected[name], got)
        by_family[fam] = (fam_whole, fam_out)
        switched[fam] = len(provenance.learned_only_from(fam))
    return LofoResult(whole, left_out, by_family, switched)
