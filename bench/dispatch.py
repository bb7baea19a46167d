"""Dispatch throughput and memory, end to end.

    python bench/dispatch.py [--n 20000] [--rounds 1] [--sink both|aiosmtpd|smtp-sink] [--db URL]
                             [--rss-small 10000] [--rss-big 200000] [--no-rss]

1. Queues N mails (registration-received, each with its own name and address) in a fresh database.
2. Raw limit: the same number of pre-rendered messages pushed by a bare smtplib loop over one connection
   to the sink (no rendering, no database).
3. Dispatch: mailflow's run_dispatch to the same sink — render + claim + SMTP + recorded transitions.
4. Prints mails/s for both and the ratio against the target 0.8. With --rounds R the N mails are split
   into R alternating raw/dispatch rounds (the figures are the totals), so that a load change on a shared
   machine during the run weighs on both sides alike; the load average is printed before and after.
5. Peak RSS of a dispatch process draining --rss-small vs --rss-big queued mails (flat within 50 MB?).

Two sinks, each in its own process (so it does not share our GIL), accepting every mail: aiosmtpd
(Python, no PIPELINING offered) and Postfix's smtp-sink (C, offers PIPELINING like a real Postfix relay;
Debian package postfix). Steps 1-4 run against each in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from mailflow.config import load_settings  # noqa: E402
from mailflow.context import AppContext  # noqa: E402
from mailflow.db import Database, init_schema  # noqa: E402
from mailflow.mail.dispatch import run_dispatch  # noqa: E402
from mailflow.mail.outbox import new_message_id  # noqa: E402
from mailflow.mail.render import Envelope, render_bytes  # noqa: E402
from mailflow.models import OutboxMessage, OutboxStatus  # noqa: E402
from mailflow.timeutil import now  # noqa: E402


def context_for(i: int) -> dict[str, Any]:
    return {"name": f"王小明{i}", "account": f"user{i}", "company_name": "臺灣港務股份有限公司基隆分公司",
            "ubn": "04595257", "submitted_at": "2026-01-02T03:04:05+00:00"}


def serve_sink() -> None:
    """Child mode: an aiosmtpd sink that accepts everything; prints its port, runs until stdin closes."""
    from mailflow.mail.capture import start_controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok: queued"

    controller = start_controller(Sink(), 0, data_size_limit=0)
    print(controller.port, flush=True)
    sys.stdin.read()
    controller.stop()


SMTP_SINK = "/usr/sbin/smtp-sink"


class Sink:
    """A sink process: the aiosmtpd one (this script in child mode) or Postfix's smtp-sink."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "aiosmtpd":
            self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sink"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
            assert self.proc.stdout is not None
            self.port = int(self.proc.stdout.readline())
            return
        self.port = free_port()
        # -u: smtp-sink refuses to run as root without a user to switch to; 256: the listen backlog.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([SMTP_SINK, *user, f"127.0.0.1:{self.port}", "256"],
                                     stdin=subprocess.PIPE, text=True)
        wait_for_greeting(self.port)

    def stop(self) -> None:
        if self.kind == "aiosmtpd":
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_greeting(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def queue(db: Database, n: int, domain: str, first: int = 0) -> None:
    """Bulk-insert n due mails (numbered from ``first``) in chunks (setup, not measured)."""
    moment = now()
    for start in range(first, first + n, 5000):
        rows = [{"template": "registration-received", "to_address": f"user{i}@example.com",
                 "to_key": f"user{i}@example.com", "to_name": f"王小明{i}", "context": context_for(i),
                 "message_id": new_message_id(domain), "status": OutboxStatus.QUEUED,
                 "next_attempt_at": moment, "created_at": moment}
                for i in range(start, min(first + n, start + 5000))]
        with db.session() as session:
            session.execute(insert(OutboxMessage), rows)


def make_ctx(db_url: str, port: int) -> AppContext:
    settings = load_settings(None, {
        "MAILFLOW_DATABASE__URL": db_url, "MAILFLOW_SMTP__MODE": "relay", "MAILFLOW_SMTP__HOST": "127.0.0.1",
        "MAILFLOW_SMTP__PORT": str(port), "MAILFLOW_SECURITY__SECRET_KEY": "bench-secret-key-0123456789",
        "MAILFLOW_HTTP__BASE_URL": "https://hep.twport.com.tw",
    })
    return AppContext.from_settings(settings)


def drain(ctx: AppContext) -> int:
    sent = 0
    while True:
        report = run_dispatch(ctx, threading.Event())
        sent += report.results.get("sent", 0)
        if not report.claimed:
            return sent


def raw_loop(ctx: AppContext, n: int) -> float:
    """Seconds a bare smtplib loop takes to push n pre-rendered mails over one connection."""
    envelopes = [Envelope("registration-received", f"user{i}@example.com", f"王小明{i}",
                          new_message_id("bench.local"), context_for(i)) for i in range(n)]
    messages = [render_bytes(ctx.settings, envelope) for envelope in envelopes]
    conn = smtplib.SMTP("127.0.0.1", ctx.settings.smtp.port, local_hostname="bench.local")
    started = time.perf_counter()
    for i, raw in enumerate(messages):
        conn.sendmail(f"bounce+{i}@bounces.example", [f"user{i}@example.com"], raw)
    elapsed = time.perf_counter() - started
    conn.quit()
    return elapsed


def compare(ctx: AppContext, n: int, rounds: int) -> tuple[float, float, int]:
    """(raw seconds, dispatch seconds, mails sent by dispatch) over ``rounds`` alternating rounds."""
    raw_seconds = dispatch_seconds = 0.0
    sent = 0
    sizes = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    first = 0
    for size in sizes:
        queue(ctx.db, size, ctx.settings.mail.message_id_domain, first)
        first += size
        raw_seconds += raw_loop(ctx, size)
        started = time.perf_counter()
        sent += drain(ctx)
        dispatch_seconds += time.perf_counter() - started
    return raw_seconds, dispatch_seconds, sent


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fresh_db(url: str | None, folder: str, name: str) -> str:
    if url:
        return url
    return f"sqlite:///{folder}/{name}.db"


def measure_rss(db_url: str, port: int) -> None:
    """Child mode: drain the queue, print sent count and peak RSS (MB) as JSON."""
    ctx = make_ctx(db_url, port)
    started = time.perf_counter()
    sent = drain(ctx)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"sent": sent, "peak_rss_mb": round(peak, 1), "seconds": round(elapsed, 1)}))


def rss_run(n: int, port: int, folder: str) -> dict[str, Any]:
    url = fresh_db(None, folder, f"rss{n}")
    db = Database(url)
    init_schema(db)
    queue(db, n, "bench.local")
    db.dispose()
    out = subprocess.run([sys.executable, __file__, "--measure-rss", url, "--port", str(port)],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


TARGET = 0.8


def throughput(args: argparse.Namespace, kind: str, port: int, url: str) -> None:
    ctx = make_ctx(url, port)
    init_schema(ctx.db)
    print(f"\n== sink {kind}  database: {ctx.db.engine.dialect.name}  load average: {load_average()}")
    raw_seconds, dispatch_seconds, sent = compare(ctx, args.n, max(1, args.rounds))
    raw_rate = args.n / raw_seconds
    rate = sent / dispatch_seconds
    print(f"raw smtplib loop, one connection, pre-rendered: {raw_rate:8.0f} mails/s")
    print(f"mailflow dispatch (render + DB + SMTP + record): {rate:8.0f} mails/s "
          f"({sent} sent in {dispatch_seconds:.1f} s)")
    ratio = rate / raw_rate
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"ratio dispatch/raw: {ratio:.2f} (target >= {TARGET:.2f}: {verdict})")
    print(f"load average after: {load_average()}")
    ctx.db.dispose()


def memory(args: argparse.Namespace, port: int, folder: str) -> None:
    small = rss_run(args.rss_small, port, folder)
    big = rss_run(args.rss_big, port, folder)
    growth = big["peak_rss_mb"] - small["peak_rss_mb"]
    print(f"peak RSS draining {args.rss_small:>7} queued: {small['peak_rss_mb']:7.1f} MB "
          f"({small['sent']} sent, {small['seconds']} s)")
    print(f"peak RSS draining {args.rss_big:>7} queued: {big['peak_rss_mb']:7.1f} MB "
          f"({big['sent']} sent, {big['seconds']} s)")
    verdict = "met" if growth <= 50 else "NOT met"
    print(f"RSS growth: {growth:+.1f} MB (target within 50 MB: {verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="mails to dispatch (default 20000)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate raw and dispatch in this many rounds (default 1)")
    parser.add_argument("--sink", choices=("both", "aiosmtpd", "smtp-sink"), default="both",
                        help="which sink to measure against (default both, in this order)")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file per sink); must be new")
    parser.add_argument("--rss-small", type=int, default=10000)
    parser.add_argument("--rss-big", type=int, default=50000,
                        help="queued mails for the big RSS run (default 50000; the issue's figure is 200000)")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-rss", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink()
        return 0
    if args.measure_rss:
        measure_rss(args.measure_rss, args.port)
        return 0

    kinds = ["aiosmtpd", "smtp-sink"] if args.sink == "both" else [args.sink]
    print(f"cpus: {os.cpu_count()}  mails: {args.n}  rounds: {args.rounds}  sinks: {', '.join(kinds)}")
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            sink = Sink(kind)
            try:
                throughput(args, kind, sink.port, fresh_db(args.db, folder, f"bench-{kind}"))
                if not args.no_rss and kind == kinds[-1]:
                    memory(args, sink.port, folder)
            finally:
                sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
