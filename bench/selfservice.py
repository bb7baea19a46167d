"""Does the answer of 忘記密碼 tell whether an account exists? The time of POST /api/password-resets for an
approved, verified account (which gets a mail) against an unknown 帳號 and a pending account, measured from
outside against the live app (uvicorn in this process, capture mode), requests interleaved in random order.

    python bench/selfservice.py [--n 200] [--db sqlite|postgresql|both] [--pg-admin URL]

Prints, per database and kind, the median, p90 and worst answer time, and the difference of medians. The
lookup and the mail happen after the answer (a background task), so the answer's own work — the client's
rate counter — is the same for every kind. The per-client limit is lifted for the run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inbound import database, settings_for  # noqa: E402
from bench.scale import ADMIN  # noqa: E402
from mailflow.accounts import selfservice  # noqa: E402
from mailflow.context import AppContext  # noqa: E402
from mailflow.models import AccountStatus  # noqa: E402
from tests.factories import add_general  # noqa: E402
from tests.security.live import live_app  # noqa: E402

CLIENT = """
import json, sys, time
import httpx
url, order = sys.argv[1], json.loads(sys.argv[2])
with httpx.Client(base_url=url, timeout=30) as http:
    for account in order[:15]:  # warm-up: the connection, the server's compiled statements
        http.post("/api/password-resets", json={"account": account})
    times = []
    for account in order:
        started = time.perf_counter()
        answer = http.post("/api/password-resets", json={"account": account})
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 202, answer.text
print(json.dumps({"times": times}))
"""
KINDS = {"verified": "harbor01", "unknown": "nobody99", "pending": "waiting01"}


def measure(url: str, n: int) -> dict[str, list[float]]:
    selfservice.CLIENT_LIMIT = 10 ** 9
    selfservice.ACCOUNT_LIMIT = 10 ** 9
    selfservice.ADDRESS_LIMIT = 10 ** 9
    ctx = AppContext.from_settings(settings_for(url))
    add_general(ctx, "harbor01", "04595257")
    add_general(ctx, "waiting01", "12345675", verified=False, status=AccountStatus.PENDING)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    kinds = [kind for kind in KINDS for _ in range(n)]
    random.shuffle(kinds)
    order = [KINDS[kind] for kind in kinds]
    with live_app(ctx) as live:
        # The client runs in a process of its own: in this one it would wait for the GIL while the
        # server's background work (the lookup and the mail, after the answer) runs, and count that.
        found = subprocess.run([sys.executable, "-c", CLIENT, live.url, json.dumps(order)], check=True,
                               capture_output=True, text=True).stdout
    for kind, took in zip(kinds, json.loads(found)["times"], strict=True):
        times[kind].append(took)
    ctx.db.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin", default=ADMIN)
    args = parser.parse_args()
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        with database(kind, args.pg_admin) as url:
            times = measure(url, args.n)
        medians = {k: statistics.median(v) for k, v in times.items()}
        for name, values in times.items():
            ordered = sorted(values)
            print(f"{kind:10} {name:9} n={len(values)} median {medians[name]:.2f} ms  "
                  f"p90 {ordered[int(len(ordered) * 0.9)]:.2f} ms  worst {ordered[-1]:.2f} ms")
        print(f"{kind:10} verified - unknown median: {medians['verified'] - medians['unknown']:+.2f} ms, "
              f"verified - pending: {medians['verified'] - medians['pending']:+.2f} ms")


if __name__ == "__main__":
    main()
