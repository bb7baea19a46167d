"""Shared corpus location and scoring for the inbound tests and the bench."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.inbound.analysis import Analysis, analyze


def corpus_dir() -> Path:
    env = os.environ.get("MAILFLOW_BOUNCE_CORPUS")
    if env:
        return Path(env)
    # repo/tests/inbound/corpus.py -> repo/../shared/corpus/bounces (also true in CI's fresh clone)
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bounces"


def load_expected(directory: Path) -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = json.loads((directory / "expected.json").read_text())
    return data


@dataclass
class Score:
    expected: int = 0
    matched: int = 0
    extra: int = 0
    hard_ok: int = 0
    reason_ok: int = 0
    wrong_kind: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        m = max(self.matched, 1)
        e = max(self.expected, 1)
        return {
            "recipients": self.matched / e,
            "extra": self.extra / e,
            "hard": self.hard_ok / m,
            "reason": self.reason_ok / m,
        }


def score(directory: Path, results: dict[str, Analysis] | None = None) -> Score:
    expected = load_expected(directory)
    sc = Score()
    for name, want in sorted(expected.items()):
        result = results[name] if results else analyze((directory / name).read_bytes())
        score_file(sc, name, want, result)
    return sc


def score_file(sc: Score, name: str, want: list[dict[str, object]], got: Analysis) -> None:
    is_bounce = got.kind in ("bounce", "complaint")
    if not want or name.startswith("is-not-bounce"):
        if is_bounce:
            sc.wrong_kind.append(f"{name}: {got.kind}")
        if not want:
            return
    found = {r.address: r for r in got.recipients} if is_bounce else {}
    wanted = {str(w["recipient"]).lower(): w for w in want}
    sc.expected += len(wanted)
    for addr, w in wanted.items():
        r = found.get(addr)
        if r is None:
            sc.mismatches.append(f"MISSING {name}: {addr} (kind {got.kind}, got {sorted(found)})")
            continue
        sc.matched += 1
        hard_ok = bool(w["hardbounce"]) == r.hard
        reason_ok = w["reason"] == r.reason
        sc.hard_ok += hard_ok
        sc.reason_ok += reason_ok
        if not (hard_ok and reason_ok):
            sc.mismatches.append(
                f"REASON {name}: {addr} want {w['reason']}/{w['status']} got {r.reason}/"
                f"{r.status} hard={r.hard} diag={r.diagnostic[:120]!r}"
            )
    for addr in found:
        if addr not in wanted:
            sc.extra += 1
            sc.mismatches.append(f"EXTRA {name}: {addr}")


# --- flufl.bounce's test messages (Apache-2.0, tests/inbound/flufl/README.md) -------------------


def flufl_dir() -> Path:
    return Path(__file__).resolve().parent / "flufl"


@dataclass
class FluflScore:
    expected: int = 0
    matched: int = 0
    extra: int = 0
    delayed_ok: int = 0
    wrong_kind: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        e, m = max(self.expected, 1), max(self.matched, 1)
        return {"recipients": self.matched / e, "extra": self.extra / e, "delayed": self.delayed_ok / m}


def score_flufl(directory: Path | None = None) -> FluflScore:
    """flufl's own answers: which addresses failed, and whether only temporarily."""
    directory = directory or flufl_dir()
    expected = json.loads((directory / "expected.json").read_text())
    sc = FluflScore()
    for name, want in sorted(expected.items()):
        got = analyze((directory / name).read_bytes())
        is_bounce = got.kind in ("bounce", "complaint")
        if want["kind"] == "unscored":
            continue
        if want["kind"] == "not-bounce":
            if is_bounce:
                sc.wrong_kind.append(f"{name}: {got.kind}")
            continue
        found = {r.address: r for r in got.recipients} if is_bounce else {}
        for addr in want["recipients"]:
            sc.expected += 1
            r = found.get(addr)
            if r is None:
                sc.mismatches.append(f"MISSING {name}: {addr} (kind {got.kind}, got {sorted(found)})")
                continue
            sc.matched += 1
            if (r.action == "delayed") == want["temporary"]:
                sc.delayed_ok += 1
            else:
                sc.mismatches.append(f"ACTION {name}: {addr} got {r.action}, temporary={want['temporary']}")
        for addr in found:
            if addr not in want["recipients"]:
                sc.extra += 1
                sc.mismatches.append(f"EXTRA {name}: {addr}")
    return sc
