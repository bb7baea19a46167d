"""Throughput of analyze() on the bounce corpus vs flufl.bounce's scan_message alone.

Usage: python bench/bounce.py [--mismatches]   (figures only; no assertions on time)
"""

from __future__ import annotations

import email
import sys
import time
from email import policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flufl.bounce import scan_message  # noqa: E402

from mailflow.inbound.analysis import analyze  # noqa: E402
from tests.inbound.corpus import corpus_dir, score  # noqa: E402

TARGET = 1500.0


def _rate(func: object, blobs: list[bytes], rounds: int = 5) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in blobs:
            func(raw)  # type: ignore[operator]
        best = max(best, len(blobs) / (time.perf_counter() - start))
    return best


def _flufl(raw: bytes) -> object:
    return scan_message(email.message_from_bytes(raw, policy=policy.compat32))


def main() -> None:
    directory = corpus_dir()
    blobs = [p.read_bytes() for p in sorted(directory.glob("*.eml"))]
    ours = _rate(analyze, blobs)
    theirs = _rate(_flufl, blobs)
    print(f"corpus: {len(blobs)} mails at {directory}")
    print(f"analyze():            {ours:8.0f} mails/s  ({ours / TARGET:.2f}x the {TARGET:.0f}/s target)")
    print(f"flufl scan_message(): {theirs:8.0f} mails/s  (analyze/flufl = {ours / theirs:.2f})")
    sc = score(directory)
    fig = sc.figures()
    print(
        f"accuracy: recipients {fig['recipients']:.3f} extra {fig['extra']:.3f} hard {fig['hard']:.3f} "
        f"reason {fig['reason']:.3f} wrong-kind {len(sc.wrong_kind)}"
    )
    if "--mismatches" in sys.argv:
        print("\n".join(sc.mismatches + sc.wrong_kind))


if __name__ == "__main__":
    main()
