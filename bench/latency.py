"""Latency from an event to the person who must see it, measured from outside a running `mailflow run`.

    python bench/latency.py [--part bounce] [--n 20] [--db sqlite|postgresql|both] [--pg-admin URL]

Parts (each prints its median and worst, per database, and the ratio to its target):
- ``bounce``: a bounce put into the mailbox (IMAP APPEND to a throw-away Dovecot) → its support item in
  the database, with a real `mailflow run --role worker` reading the mailbox (IMAP IDLE); N bounces of
  N mails sent to N applicants, with random gaps of 0.2–1.0 s. Target: worst < 3 s.
- ``relay``: the 201 of `POST /api/applications` → the mail at an outside SMTP sink — the dispatch side's
  part (issue 17 item 1, wake-on-commit); it goes into PARTS below beside ``bounce``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.inbound import database, settings_for  # noqa: E402
from bench.scale import ADMIN  # noqa: E402
from mailflow import leases  # noqa: E402
from mailflow.context import AppContext  # noqa: E402
from mailflow.inbound.imap import MailboxWatcher  # noqa: E402
from mailflow.models import SupportItem  # noqa: E402
from tests.inbound.dovecot import DovecotServer, start_dovecot  # noqa: E402
from tests.inbound.test_intake_helpers import dsn, make_applicant, sent_mail  # noqa: E402
from tests.peers import wait_until  # noqa: E402

BOUNCE_TARGET_S = 3.0


def worker(url: str, dovecot: DovecotServer, workdir: Path) -> subprocess.Popen[bytes]:
    """`mailflow run --role worker` reading the Dovecot mailbox, its log in workdir/worker.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({
        "MAILFLOW_DATABASE__URL": url, "MAILFLOW_HTTP__PORT": "0", "MAILFLOW_SMTP__MODE": "capture",
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(workdir / "documents"),
        "MAILFLOW_INBOUND__IMAP_HOST": dovecot.host, "MAILFLOW_INBOUND__IMAP_PORT": str(dovecot.port),
        "MAILFLOW_INBOUND__IMAP_SSL": "false", "MAILFLOW_INBOUND__IMAP_USER": dovecot.user,
        "MAILFLOW_INBOUND__IMAP_PASSWORD": dovecot.password, "PYTHONUNBUFFERED": "1",
    })
    log = (workdir / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "mailflow", "run", "--role", "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def bounce_latency(url: str, n: int) -> list[float]:
    """Seconds from each APPEND to the bounce's support item."""
    dovecot = start_dovecot()
    ctx = AppContext.from_settings(settings_for(url))
    with tempfile.TemporaryDirectory() as folder:
        proc = worker(url, dovecot, Path(folder))
        try:
            mails = [sent_mail(ctx, make_applicant(ctx, account=f"late{i:03d}", email=f"late{i}@example.com"))
                     for i in range(n)]
            wait_until(lambda: leases.holder_of(ctx.db, MailboxWatcher.LEASE) is not None, 60,
                       "the worker to take the IMAP mailbox", check=lambda: _alive(proc, folder))
            time.sleep(1.0)  # its first pass done, the worker waits in IDLE
            client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=60)
            client.login(dovecot.user, dovecot.password)
            took = []
            for mail in mails:
                time.sleep(random.uniform(0.2, 1.0))
                raw = dsn(ctx.settings, mail)
                started = time.perf_counter()
                client.append("INBOX", raw)
                _wait_for_item(ctx, mail.id, lambda: _alive(proc, folder))
                took.append(time.perf_counter() - started)
            client.logout()
            return took
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            ctx.db.dispose()
            dovecot.stop()


def _wait_for_item(ctx: AppContext, outbox_id: int, check: Callable[[], None]) -> None:
    deadline = time.monotonic() + 60
    while True:
        with ctx.db.session() as session:
            if session.scalar(select(SupportItem.id).where(SupportItem.outbox_id == outbox_id)) is not None:
                return
        check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"no support item for outbox {outbox_id} after 60 s")
        time.sleep(0.01)


def _alive(proc: subprocess.Popen[bytes], folder: str) -> None:
    if proc.poll() is not None:
        log = (Path(folder) / "worker.log").read_text(errors="replace")
        raise RuntimeError("the worker died:\n" + log[-3000:])


# Each part: (name, function(url, n) -> seconds per event, target in seconds for the worst).
PARTS: dict[str, tuple[Callable[[str, int], list[float]], float]] = {
    "bounce": (bounce_latency, BOUNCE_TARGET_S),
    # "relay": (relay_latency, 0.3),  — registration 201 → the mail at the sink (the dispatch side)
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-admin", default=ADMIN)
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load average before {os.getloadavg()[0]:.2f}")
    for name in (PARTS if args.part == "all" else [args.part]):
        measure, target = PARTS[name]
        for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            with database(kind, args.pg_admin) as url:
                took = measure(url, args.n)
            worst = max(took)
            print(f"[{kind}] {name}: n={len(took)} median {statistics.median(took) * 1000:.0f} ms, "
                  f"worst {worst * 1000:.0f} ms ({worst / target:.2f} x the {target:g} s limit)")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
