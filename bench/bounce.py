"""Throughput of analyze() on the bounce corpus vs flufl.bounce's scan_message alone.

Usage: python bench/bounce.py [--mismatches]   (figures only; no assertions on time)

Wall-clock rates move with whatever else runs on the machine, so the CPU-time rate
(time.process_time, the same single thread) is printed too; on a quiet machine the
two agree.
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


def _rate(func: object, blobs: list[bytes], rounds: int = 5) -> tuple[float, float]:
    """Best wall-clock and best CPU-time mails/s over `rounds` passes."""
    best_wall = best_cpu = 0.0
    for _ in range(rounds):
        start, cpu = time.perf_counter(), time.process_time()
        for raw in blobs:
            func(raw)  # type: ignore[operator]
        best_wall = max(best_wall, len(blobs) / (time.perf_counter() - start))
        best_cpu = max(best_cpu, len(blobs) / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def _flufl(raw: bytes) -> object:
    return scan_message(email.message_from_bytes(raw, policy=policy.compat32))


def main() -> None:
    directory = corpus_dir()
    blobs = [p.read_bytes() for p in sorted(directory.glob("*.eml"))]
    ours, ours_cpu = _rate(analyze, blobs)
    theirs, theirs_cpu = _rate(_flufl, blobs)
    print(f"corpus: {len(blobs)} mails at {directory}")
    print(
        f"analyze():            {ours:8.0f} mails/s wall, {ours_cpu:6.0f} mails/s CPU "
        f"({ours_cpu / TARGET:.2f}x the {TARGET:.0f}/s target)"
    )
    print(
        f"flufl scan_message(): {theirs:8.0f} mails/s wall, {theirs_cpu:6.0f} mails/s CPU "
        f"(analyze/flufl = {ours_cpu / max(theirs_cpu, 1e-9):.2f})"
    )
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
