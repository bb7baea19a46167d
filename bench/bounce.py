"""Bounce parsing: speed beside Sisimai (Perl) on the same mails, start-up time, accuracy figures.

Usage: python bench/bounce.py [--rounds 5] [--blocks 3] [--startup-runs 15] [--no-accuracy] [--mismatches]

- Speed: `analyze()` over every mail of the development corpus (../shared/corpus/bounces) read into
  memory first, best of `--rounds` passes, and Debian's libsisimai-perl (`Sisimai->make(\\$string)`)
  over the same bytes in the same run (bench/sisimai_rate.pl), its start-up excluded the same way;
  `--blocks` blocks of rounds alternate between the two, each one's best kept.
  Both rates are per core: CPU time of the one thread doing the work (time.process_time / Perl's
  `times`); the wall-clock rates are printed too, but on a shared VM they mostly measure neighbours.
  Target: analyze() ≥ 1.5 × Sisimai.
- Start-up: the whole process for one file, `python -m mailflow bounce parse FILE` (bytecode cached,
  as an installed package has it), median of `--startup-runs`, beside `perl -MSisimai` on the same
  file and a bare `python -c pass`. Target ≤ 0.3 s.
- Accuracy: development half against Sisimai 5's answers, leave-one-family-out (tests/inbound/lofo.py)
  and flufl.bounce's sample set (tests/inbound/flufl).

Figures only: no assertions on time (docs/BENCHMARKS.md records them with date and core count).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailflow.inbound.analysis import analyze  # noqa: E402
from tests.inbound.corpus import corpus_dir, score, score_flufl  # noqa: E402

SPEED_TARGET = 1.5
STARTUP_TARGET = 0.3


def our_rate(blobs: list[bytes], rounds: int) -> tuple[float, float]:
    """Best wall-clock and best CPU-time mails/s over `rounds` passes."""
    best_wall = best_cpu = 0.0
    for _ in range(rounds):
        start, cpu = time.perf_counter(), time.process_time()
        for raw in blobs:
            analyze(raw)
        best_wall = max(best_wall, len(blobs) / (time.perf_counter() - start))
        best_cpu = max(best_cpu, len(blobs) / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def sisimai_rate(files: list[Path], rounds: int) -> dict[str, float] | None:
    if shutil.which("perl") is None:
        return None
    script = ROOT / "bench" / "sisimai_rate.pl"
    done = subprocess.run(
        ["perl", str(script), f"--rounds={rounds}", *map(str, files)], capture_output=True, text=True
    )
    if done.returncode != 0:
        print(f"Sisimai not measured: {done.stderr.strip()[:200]} (apt-get install libsisimai-perl)")
        return None
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall-clock and median CPU (user+system of the child) seconds of `runs` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True, cwd=ROOT)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _has_sisimai() -> bool:
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True).returncode == 0


def startup(sample: Path, runs: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache  # bytecode written once, read after: as when installed
        ours = [sys.executable, "-m", "mailflow", "bounce", "parse", str(sample)]
        subprocess.run(ours, env=env, stdout=subprocess.DEVNULL, check=True, cwd=ROOT)
        rows = [
            ("python -m mailflow bounce parse FILE", ours),
            ("python -c pass", [sys.executable, "-c", "pass"]),
        ]
        if _has_sisimai():
            perl = ["perl", "-MSisimai", "-e", "Sisimai->make($ARGV[0])", str(sample)]
            rows.insert(1, ("perl -MSisimai -e 'Sisimai->make(FILE)'", perl))
        for label, cmd in rows:
            wall, cpu = _timed(cmd, env, runs)
            note = (
                f"  ({wall / STARTUP_TARGET:.2f}x the {STARTUP_TARGET} s limit)" if "mailflow" in cmd else ""
            )
            print(f"start-up  {label:42s} median {wall:6.3f} s wall, {cpu:6.3f} s CPU{note}")
        imports = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "mailflow", "bounce", "parse", str(sample)],
            env=env,
            capture_output=True,
            text=True,
        ).stderr
    heavy = sorted({line.split("|")[-1].strip() for line in imports.splitlines() if _heavy(line)})
    print(f"start-up  modules outside parsing imported: {heavy or 'none'}")


def _heavy(line: str) -> bool:
    name = line.split("|")[-1].strip()
    roots = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "apscheduler", "jinja2", "psycopg")
    return name.split(".")[0] in roots or name.startswith(("mailflow.db", "mailflow.web", "mailflow.models"))


def accuracy(directory: Path, show: bool) -> None:
    from tests.inbound.lofo import measure

    sc = score(directory)
    lofo = measure(directory)
    flufl = score_flufl()
    for label, s in (("whole corpus", sc), ("leave-one-family-out", lofo.left_out)):
        f = s.figures()
        print(
            f"accuracy  {label:21s} recipients {f['recipients']:.3f} ({s.matched}/{s.expected}) "
            f"extra {f['extra']:.3f} hard {f['hard']:.3f} reason {f['reason']:.3f} "
            f"non-bounces taken {len(s.wrong_kind)}"
        )
    f = flufl.figures()
    print(
        f"accuracy  {'flufl.bounce set':21s} recipients {f['recipients']:.3f} "
        f"({flufl.matched}/{flufl.expected}) "
        f"extra {f['extra']:.3f} delayed {f['delayed']:.3f} non-bounces taken {len(flufl.wrong_kind)}"
    )
    if show:
        print("\n".join(sc.mismatches + sc.wrong_kind + ["-- LOFO --"] + lofo.left_out.mismatches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=15)
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--mismatches", action="store_true")
    args = parser.parse_args()
    directory = corpus_dir()
    files = sorted(directory.glob("*.eml"))
    blobs = [p.read_bytes() for p in files]
    load = os.getloadavg()[0]
    print(f"corpus: {len(files)} mails at {directory}; {os.cpu_count()} cores, load average {load:.2f}")
    # alternate blocks of rounds, ours then Sisimai's, and keep each one's best: on a shared machine
    # the neighbours' load changes within a minute, and both should meet the same quiet moments
    wall = cpu = 0.0
    theirs: dict[str, float] | None = None
    paired: list[float] = []  # each block's ratio: the two measured within the same minute
    for _ in range(args.blocks):
        block_wall, block_cpu = our_rate(blobs, args.rounds)
        wall, cpu = max(wall, block_wall), max(cpu, block_cpu)
        block = sisimai_rate(files, args.rounds)
        if block is None:
            break
        paired.append(block_cpu / max(block["cpu"], 1e-9))
        if theirs is not None:
            block["wall"], block["cpu"] = max(theirs["wall"], block["wall"]), max(theirs["cpu"], block["cpu"])
        theirs = block
    print(f"speed     analyze()          {wall:8.0f} mails/s wall, {cpu:8.0f} mails/s CPU (one core)")
    if theirs is not None:
        print(
            f"speed     Sisimai {theirs['version']:10s} {theirs['wall']:8.0f} mails/s wall, "
            f"{theirs['cpu']:8.0f} mails/s CPU (one core)"
        )
        ratio = cpu / max(theirs["cpu"], 1e-9)
        target = f"CPU; target >= {SPEED_TARGET}"
        print(f"speed     analyze() / Sisimai = {ratio:.2f}, best against best ({target})")
        blocks = ", ".join(f"{r:.2f}" for r in paired)
        print(f"speed     block by block: {blocks}; median {statistics.median(paired):.2f}")
    startup(files[0], args.startup_runs)
    if not args.no_accuracy:
        accuracy(directory, args.mismatches)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
