"""The daemon's jobs: which run where, and that a singleton runs only on the lease holder."""

from __future__ import annotations

from mailflow import leases
from mailflow.context import AppContext
from mailflow.scheduler import build_scheduler, lease_name, singleton


def test_every_job_of_the_daemon_is_scheduled(ctx: AppContext) -> None:
    ids = {job.id for job in build_scheduler(ctx).get_jobs()}
    assert ids == {"dispatch", "inbound-pending", "support-sweep", "reminders", "housekeeping", "digest",
                   "digest-catch-up"}
    ctx.settings.inbound.imap_host = "127.0.0.1"
    assert "imap" in {job.id for job in build_scheduler(ctx).get_jobs()}


def test_a_singleton_runs_only_where_its_lease_is_held(ctx: AppContext) -> None:
    runs: list[str] = []
    assert leases.acquire(ctx.db, lease_name("sweep-test"), "other-worker", 60)
    singleton("sweep-test", lambda c: runs.append(c.worker_id), ctx, 60)()
    assert runs == []  # another live worker holds it
    leases.release(ctx.db, lease_name("sweep-test"), "other-worker")
    singleton("sweep-test", lambda c: runs.append(c.worker_id), ctx, 60)()
    assert runs == [ctx.worker_id]
