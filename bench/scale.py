"""Scale figures on PostgreSQL (not a test: it prints what it measured).

1. Throughput with 1, 2 and 4 `mailflow run --role worker` processes draining the same queue into one
   counting SMTP sink, next to the raw limits: how fast one process can only render mails, and how fast
   the sink accepts pre-rendered mails over one connection.
2. A large backlog (``--backlog 1000000``): the EXPLAIN of dispatch's claim query on it, one worker's rate
   measured window by window while it works through the backlog, and its memory (RSS) over time.

    python bench/scale.py                        # 5,000 mails per worker count, no backlog
    python bench/scale.py --mails 20000 --backlog 1000000 --backlog-seconds 60

Each run uses fresh databases on --pg (default the local server) and drops them afterwards.
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailflow.config import load_settings  # noqa: E402
from mailflow.db import Database, init_schema  # noqa: E402
from mailflow.mail import states  # noqa: E402
from mailflow.mail.render import Envelope, render_bytes  # noqa: E402
from tests.peers import wait_until  # noqa: E402
from tests.scale.sink import CountingSink  # noqa: E402
from tests.scale.workers import Worker, queue_mails, status_counts, worker_env  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"mf_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    init_schema(db)
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def envelope(i: int) -> Envelope:
    context = {"name": "王小明", "account": f"example{i}", "ubn": "12345678",
               "company_name": "臺灣港務股份有限公司基隆分公司", "submitted_at": "2025-01-01T00:00:00+00:00"}
    return Envelope("registration-received", f"applicant{i}@example.com", "王小明",
                    f"<bench-{i}@twport.com.tw>", context)


def raw_limits(n: int) -> tuple[float, float]:
    """(mails rendered per second by one process, mails accepted per second by the sink)."""
    settings = load_settings(None, {})
    started = time.perf_counter()
    raws = [render_bytes(settings, envelope(i)) for i in range(n)]
    render_rate = n / (time.perf_counter() - started)
    with CountingSink() as sink:
        conn = smtplib.SMTP("127.0.0.1", sink.port)
        started = time.perf_counter()
        for raw in raws:
            conn.sendmail("bounce@bounces.twport.com.tw", ["applicant@example.com"], raw)
        sink_rate = n / (time.perf_counter() - started)
        conn.quit()
    return render_rate, sink_rate


def throughput(admin_url: str, mails: int, n_workers: int) -> float:
    """Mails per second for ``n_workers`` processes, from their start until the last mail is stored sent
    (worker start-up included, as in a real deploy)."""
    with fresh_database(admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        queue_mails(db, mails)
        with CountingSink() as sink:
            env = worker_env(url, sink.port, Path(tmp))
            started = time.perf_counter()
            ws = [Worker(env, Path(tmp)) for _ in range(n_workers)]
            try:
                wait_until(lambda: status_counts(db).get("sent", 0) == mails, 3600, "all sent", every=0.2)
                elapsed = time.perf_counter() - started
            finally:
                for w in ws:
                    w.close()
            assert not sink.duplicates() and sink.total() == mails
        db.dispose()
        return mails / elapsed


def claim_explain(db: Database) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the select half of dispatch's claim, compiled from its own code."""
    from sqlalchemy import select

    from mailflow.models import OutboxMessage
    from mailflow.timeutil import now

    query = (select(OutboxMessage.id, OutboxMessage.status)
             .where(OutboxMessage.status.in_(states.DUE), OutboxMessage.next_attempt_at <= now())
             .order_by(OutboxMessage.next_attempt_at).limit(200).with_for_update(skip_locked=True))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        conn.rollback()
    return "\n".join(plan)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def backlog(admin_url: str, rows: int, seconds: float) -> None:
    with fresh_database(admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        started = time.perf_counter()
        with db.engine.begin() as conn:  # generate_series: a million rows in seconds, not minutes
            conn.execute(text("""
                INSERT INTO outbox (template, to_address, to_key, to_name, context, message_id, status,
                                    attempts, next_attempt_at, created_at, autoreply_seen)
                SELECT 'registration-received', 'applicant' || g || '@example.com',
                       'applicant' || g || '@example.com', '王小明',
                       json_build_object('name', '王小明', 'account', 'example' || g, 'ubn', '12345678',
                                         'company_name', '臺灣港務股份有限公司基隆分公司',
                                         'submitted_at', '2025-01-01T00:00:00+00:00'),
                       '<backlog-' || g || '@twport.com.tw>', 'queued', 0,
                       now() at time zone 'utc' - (g || ' milliseconds')::interval,
                       now() at time zone 'utc', false
                FROM generate_series(1, :rows) AS g"""), {"rows": rows})
            conn.execute(text("ANALYZE outbox"))
        print(f"backlog: {rows:,} queued rows inserted in {time.perf_counter() - started:.1f} s")
        print("claim query plan on the backlog:")
        print("  " + claim_explain(db).replace("\n", "\n  "))
        with CountingSink() as sink:
            worker = Worker(worker_env(url, sink.port, Path(tmp)), Path(tmp))
            try:
                wait_until(lambda: sink.total() > 0, 120, "first mail")
                print(f"{'t (s)':>6} {'mails/s':>8} {'RSS (MiB)':>10}")
                window = max(seconds / 6, 1)
                t0 = time.perf_counter()
                last = sink.total()
                while time.perf_counter() - t0 < seconds:
                    time.sleep(window)
                    now_total = sink.total()
                    print(f"{time.perf_counter() - t0:6.0f} {(now_total - last) / window:8.0f} "
                          f"{rss_kb(worker.proc.pid) / 1024:10.1f}")
                    last = now_total
            finally:
                worker.close()
        print("claim query plan after the run:")
        print("  " + claim_explain(db).replace("\n", "\n  "))
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=ADMIN, help="admin URL of the PostgreSQL server (fresh databases)")
    parser.add_argument("--mails", type=int, default=5000, help="mails per throughput run")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    parser.add_argument("--backlog", type=int, default=0, help="queued rows for the backlog run (0 = skip)")
    parser.add_argument("--backlog-seconds", type=float, default=30, help="how long to watch the backlog run")
    args = parser.parse_args()

    render_rate, sink_rate = raw_limits(min(args.mails, 2000))
    print(f"raw limit: render only {render_rate:.0f} mails/s per process; "
          f"sink accepts {sink_rate:.0f} mails/s over one connection")
    base = None
    for n in (int(x) for x in args.workers.split(",")):
        rate = throughput(args.pg, args.mails, n)
        base = base or rate
        print(f"{n} worker(s): {args.mails:,} mails at {rate:.0f} mails/s (x{rate / base:.2f} of one worker)")
    if args.backlog:
        backlog(args.pg, args.backlog, args.backlog_seconds)


if __name__ == "__main__":
    main()
