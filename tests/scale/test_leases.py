"""Singleton jobs across workers: exactly one holder at a time, takeover when a holder dies, renewal while
a long job runs, and the once-a-day run key — raced by threads (each its own connection) and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from mailflow import leases, scheduler
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.models import JobLease
from mailflow.timeutil import now


def race(n: int, attempt: Callable[[int], bool]) -> list[bool]:
    """Run ``attempt(i)`` for i in range(n) in threads released together; their answers in order."""
    barrier = threading.Barrier(n)
    answers: list[bool] = [False] * n

    def one(i: int) -> None:
        barrier.wait()
        answers[i] = attempt(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def expire(db: Database, name: str) -> None:
    """What a dead holder looks like after its TTL: the lease row is in the past."""
    with db.session() as session:
        session.execute(update(JobLease).where(JobLease.name == name)
                        .values(expires_at=now() - timedelta(seconds=5)))


def test_one_of_many_racing_workers_takes_a_new_lease(ctx: AppContext) -> None:
    answers = race(8, lambda i: leases.acquire(ctx.db, "job:imap", f"w{i}", 60))
    assert answers.count(True) == 1
    winner = f"w{answers.index(True)}"
    assert leases.holder_of(ctx.db, "job:imap") == winner
    assert leases.acquire(ctx.db, "job:imap", winner, 60)  # the holder renews
    assert not leases.acquire(ctx.db, "job:imap", "someone-else", 60)


def test_an_expired_lease_goes_to_exactly_one_of_the_racers(ctx: AppContext) -> None:
    assert leases.acquire(ctx.db, "job:reminders", "dead-worker", 60)
    expire(ctx.db, "job:reminders")
    assert leases.holder_of(ctx.db, "job:reminders") is None
    answers = race(8, lambda i: leases.acquire(ctx.db, "job:reminders", f"w{i}", 60))
    assert answers.count(True) == 1
    # The dead worker, come back, does not get it back while the new holder is alive.
    assert not leases.acquire(ctx.db, "job:reminders", "dead-worker", 60)


def test_release_lets_another_worker_take_over_at_once(ctx: AppContext) -> None:
    assert leases.acquire(ctx.db, "job:a", "w1", 600)
    assert leases.acquire(ctx.db, "job:b", "w1", 600)
    assert not leases.acquire(ctx.db, "job:a", "w2", 600)
    leases.release(ctx.db, "job:a", "w2")  # not the holder: changes nothing
    assert leases.holder_of(ctx.db, "job:a") == "w1"
    leases.release(ctx.db, "job:a", "w1")
    assert leases.acquire(ctx.db, "job:a", "w2", 600)
    assert leases.release_all(ctx.db, "w1") == 1  # job:b; job:a is w2's now
    assert leases.holder_of(ctx.db, "job:b") is None
    assert leases.holder_of(ctx.db, "job:a") == "w2"


def test_a_held_lease_is_renewed_while_the_job_runs_and_notices_a_takeover(ctx: AppContext) -> None:
    def expires_at() -> object:
        with ctx.db.session() as session:
            row = session.get(JobLease, "job:housekeeping")
            assert row is not None
            return row.expires_at

    with leases.hold(ctx.db, "job:housekeeping", "w1", 0.6) as held:
        assert held is not None
        first = expires_at()
        for _ in range(200):  # renewals come every 0.2 s; give a slow machine plenty of room
            if expires_at() != first:
                break
            threading.Event().wait(0.05)
        assert expires_at() != first, "the lease was never renewed"
        with leases.hold(ctx.db, "job:housekeeping", "w2", 0.6) as other:
            assert other is None
        # Now pretend w1 stalled past its TTL and w2 took the job: w1's renewal must notice.
        expire(ctx.db, "job:housekeeping")
        assert leases.acquire(ctx.db, "job:housekeeping", "w2", 600)
        assert held.lost.wait(10)
    assert leases.holder_of(ctx.db, "job:housekeeping") == "w2"


def test_the_run_key_is_claimed_once_per_day_by_racing_threads(ctx: AppContext) -> None:
    for day in ("2025-01-01", "2025-01-02"):
        answers = race(8, lambda i, day=day: leases.claim_run_key(ctx.db, "digest", day))  # type: ignore[misc]
        assert answers.count(True) == 1, day
    assert not leases.claim_run_key(ctx.db, "digest", "2025-01-02")
    assert not leases.claim_run_key(ctx.db, "digest", "2025-01-01")  # a late worker, an older day
    assert leases.claim_run_key(ctx.db, "digest", "2025-01-03")


CLAIMER = """
import sys, time
from mailflow import leases
from mailflow.db import Database
db = Database(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
won = [day for day in sys.argv[3:] if leases.claim_run_key(db, "digest", day)]
print(" ".join(won))
"""


def test_four_processes_send_each_days_digest_once(db_url: str) -> None:
    import time

    days = [f"2025-03-{d:02d}" for d in range(1, 11)]
    start = str(time.time() + 3)  # all four wait for the same moment, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, db_url, start, *days], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    won = sorted(day for out in outputs for day in out)
    assert won == days  # every day claimed, none twice


def test_a_singleton_job_runs_on_one_worker_at_a_time(ctx: AppContext) -> None:
    others = [AppContext(settings=ctx.settings, db=ctx.db, worker_id=f"worker-{i}") for i in range(4)]
    running: list[str] = []
    release_job = threading.Event()

    def job(c: AppContext) -> None:
        running.append(c.worker_id)
        release_job.wait(10)

    ticks = [scheduler.singleton("imap", job, c, 60) for c in others]
    threads = [threading.Thread(target=tick) for tick in ticks]
    for t in threads:
        t.start()
    for _ in range(200):
        if running:
            break
        threading.Event().wait(0.05)
    release_job.set()
    for t in threads:
        t.join()
    assert len(running) == 1
    # The holder's next tick runs again; the others' still do not.
    for tick in ticks:
        tick()
    assert running == [running[0], running[0]]


def test_a_failing_tick_does_not_escape_the_scheduler(ctx: AppContext) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(_: AppContext) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is restarting"))

    def buggy(_: AppContext) -> None:
        raise RuntimeError("bug")

    scheduler.guarded("x", broken, ctx)()
    scheduler.guarded("y", buggy, ctx)()


DIGEST_RACER = """
import sys, time
from datetime import date
from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.support import digest
ctx = AppContext.from_settings(load_settings(None, {"MAILFLOW_DATABASE__URL": sys.argv[1]}))
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
print(digest.run_scheduled(ctx, date(2025, 3, 1)))
"""


def test_four_workers_firing_the_digest_cron_queue_one_digest(ctx: AppContext, db_url: str) -> None:
    import time

    from sqlalchemy import func, select

    from mailflow.models import OutboxMessage

    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", DIGEST_RACER, db_url, start], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in results]
    queued = [out.strip() for out, _ in results if out.strip() != "None"]
    assert len(queued) == 1, results
    with ctx.db.session() as session:
        digests = session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.template == "support-digest"))
    assert digests == 1
