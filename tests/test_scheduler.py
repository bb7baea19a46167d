"""The daemon's jobs: which run where, and that a singleton runs only on the lease holder."""

from __future__ import annotations

import logging

import pytest

from mailflow import leases
from mailflow.context import AppContext
from mailflow.scheduler import build_scheduler, lease_name, singleton


def test_every_job_of_the_daemon_is_scheduled(ctx: AppContext) -> None:
    ids = {job.id for job in build_scheduler(ctx).get_jobs()}
    # dispatch has a loop of its own (scheduler.DispatchLoop, tests/mail/test_wake.py)
    assert ids == {"inbound-pending", "support-sweep", "reminders", "housekeeping", "digest",
                   "digest-catch-up", "webhooks"}
    # The IMAP mailbox is read by the daemon's MailboxWatcher (IDLE), not by a scheduler tick.
    ctx.settings = ctx.settings.updated(inbound={"imap_host": "127.0.0.1"})
    assert "imap" not in {job.id for job in build_scheduler(ctx).get_jobs()}


def test_a_singleton_runs_only_where_its_lease_is_held(ctx: AppContext) -> None:
    runs: list[str] = []
    assert leases.acquire(ctx.db, lease_name("sweep-test"), "other-worker", 60)
    singleton("sweep-test", lambda c: runs.append(c.worker_id), ctx, 60)()
    assert runs == []  # another live worker holds it
    leases.release(ctx.db, lease_name("sweep-test"), "other-worker")
    singleton("sweep-test", lambda c: runs.append(c.worker_id), ctx, 60)()
    assert runs == [ctx.worker_id]


def test_an_unreachable_imap_server_is_one_warning_line_per_tick(ctx: AppContext,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from mailflow.inbound import imap
    from mailflow.scheduler import guarded

    # nothing listens on port 9
    ctx.settings = ctx.settings.updated(inbound={"imap_host": "127.0.0.1", "imap_port": 9, "imap_ssl": False})
    with caplog.at_level(logging.WARNING, logger="mailflow.scheduler"):
        guarded("imap", imap.poll, ctx)()
    [record] = [r for r in caplog.records if r.name == "mailflow.scheduler"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "job imap skipped: network error (ConnectionRefusedError" in record.getMessage()
