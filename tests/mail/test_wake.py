"""Dispatch wakes when mail is committed, not at its next poll: the interval is set to an hour here, so a
mail that arrives came by the wake-up. A rolled-back transaction wakes nothing and sends nothing. Many
commits at once, and on PostgreSQL many workers woken at once, still send each mail exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.mail import wake
from mailflow.mail.outbox import enqueue
from mailflow.mail.render import sample_context
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus
from mailflow.scheduler import DispatchLoop
from tests.mail.helpers import ScriptedSink, outbox_row, queue_mail
from tests.peers import wait_until
from tests.scale.sink import CountingSink
from tests.scale.workers import REPO, claimed_by_log, status_counts, worker_env, workers

AN_HOUR = 3600.0
AT_ONCE = 25
BOUND = 30  # seconds: how long a test waits for a mail before failing (the poll would take an hour)


@pytest.fixture
def dispatching(relay_ctx: AppContext) -> Iterator[DispatchLoop]:
    """The daemon's dispatch loop with an hour between polls: its first tick runs at once, then it
    sleeps until woken."""
    relay_ctx.settings = relay_ctx.settings.updated(schedule={"dispatch_seconds": AN_HOUR})
    loop = DispatchLoop(relay_ctx)
    loop.start()
    if loop.listener is not None:
        wait_until(loop.listener.listening.is_set, BOUND, "the outbox listener to listen")
    yield loop
    loop.stop(BOUND)


def queue_in_transaction(ctx: AppContext, to: str, commit: bool) -> None:
    class Undo(Exception):
        pass

    try:
        with ctx.db.session() as session:
            enqueue(session, "registration-received", to, message_id_domain="twport.com.tw", to_name="王小明",
                    context=sample_context("registration-received", ctx.settings))
            if not commit:
                raise Undo
    except Undo:
        pass


def rows_to(ctx: AppContext, to: str) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).where(OutboxMessage.to_address == to)) or 0)


def test_a_commit_wakes_dispatch_and_a_rollback_sends_nothing(relay_ctx: AppContext, sink: ScriptedSink,
                                                              dispatching: DispatchLoop) -> None:
    wait_until(lambda: not wake.WAKE.is_set(), BOUND, "the first tick to end")
    queue_in_transaction(relay_ctx, "undone@example.com", commit=False)
    assert not wake.WAKE.is_set()  # a rolled-back transaction wakes nothing
    queue_in_transaction(relay_ctx, "kept@example.com", commit=True)
    wait_until(lambda: len(sink.to("kept@example.com")) == 1, BOUND, "the committed mail at the relay")
    assert rows_to(relay_ctx, "undone@example.com") == 0
    assert sink.to("undone@example.com") == []


@pytest.mark.postgres_only
def test_a_commit_in_another_process_wakes_the_listening_worker(relay_ctx: AppContext, sink: ScriptedSink,
                                                                dispatching: DispatchLoop) -> None:
    """PostgreSQL's NOTIFY, sent inside the queueing transaction: `mailflow outbox retry` run as its own
    process puts a failed mail back, and this process's loop sends it."""
    sink.rcpt_replies["later@example.com"] = "550 5.2.1 mailbox disabled"
    outbox_id = queue_mail(relay_ctx, "later@example.com")
    wait_until(lambda: outbox_row(relay_ctx, outbox_id).status == OutboxStatus.FAILED, BOUND,
               "the first attempt to fail")
    del sink.rcpt_replies["later@example.com"]
    env = {**os.environ, "MAILFLOW_DATABASE__URL": relay_ctx.settings.database.url}
    done = subprocess.run([sys.executable, "-m", "mailflow", "outbox", "retry", str(outbox_id)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(sink.to("later@example.com")) == 1, BOUND, "the retried mail at the relay")
    assert outbox_row(relay_ctx, outbox_id).status == OutboxStatus.SENT


@pytest.mark.postgres_only
def test_the_notification_leaves_with_the_commit_and_never_with_a_rollback(relay_ctx: AppContext) -> None:
    import psycopg

    listener = wake.Listener(relay_ctx.settings.database.url)  # its connection string, not its thread
    with psycopg.connect(listener.conninfo, autocommit=True) as conn:
        conn.execute(f"LISTEN {wake.CHANNEL}")
        queue_in_transaction(relay_ctx, "undone@example.com", commit=False)
        assert list(conn.notifies(timeout=1.0)) == []
        queue_in_transaction(relay_ctx, "first@example.com", commit=True)
        queue_in_transaction(relay_ctx, "second@example.com", commit=True)
        assert [n.channel for n in conn.notifies(timeout=BOUND, stop_after=2)] == [wake.CHANNEL] * 2


def test_many_commits_at_once_each_mail_sent_once(relay_ctx: AppContext, sink: ScriptedSink,
                                                  dispatching: DispatchLoop) -> None:
    commit_at_once(relay_ctx, "at-once")
    wait_until(lambda: len(sink.received) == AT_ONCE, BOUND, f"{AT_ONCE} mails at the relay")
    assert sorted(r.rcpt_tos[0] for r in sink.received) == sorted(f"at-once{i}@example.com"
                                                                 for i in range(AT_ONCE))
    assert claims_per_mail(relay_ctx.db) == {1}


def commit_at_once(ctx: AppContext, prefix: str) -> None:
    """AT_ONCE registrations' transactions, each queueing one mail, committed from threads together."""
    start = threading.Barrier(AT_ONCE)

    def register(i: int) -> None:
        start.wait()
        queue_in_transaction(ctx, f"{prefix}{i}@example.com", commit=True)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def claims_per_mail(db: Database) -> set[int]:
    with db.session() as session:
        counted = session.execute(select(OutboxEvent.outbox_id, func.count())
                                  .where(OutboxEvent.to_status == OutboxStatus.SENDING)
                                  .group_by(OutboxEvent.outbox_id))
        return {int(n) for _, n in counted}


@pytest.mark.postgres_only
def test_three_workers_woken_at_once_send_each_mail_once(db_url: str, tmp_path: Path) -> None:
    """Every worker is woken by every commit; SKIP LOCKED lets one claim and the others find nothing."""
    db = Database(db_url)
    env = worker_env(db_url, 0, tmp_path, schedule__dispatch_seconds=AN_HOUR)
    with CountingSink() as counting:
        env["MAILFLOW_SMTP__PORT"] = str(counting.port)
        with workers(env, tmp_path, 3) as ws:
            wait_until(lambda: all("outbox listener: listening" in w.output() for w in ws), 60,
                       "every worker to listen")
            settings = load_settings(None, {k: v for k, v in env.items() if k.startswith("MAILFLOW_")})
            commit_at_once(AppContext(settings, db), "storm")
            wait_until(lambda: status_counts(db).get("sent", 0) == AT_ONCE, 60, f"{AT_ONCE} mails sent",
                       context=lambda: "\n".join(w.output()[-2000:] for w in ws))
            for w in ws:
                assert w.terminate(30) == 0, w.output()[-3000:]
            outputs = [w.output() for w in ws]
    assert counting.total() == AT_ONCE and counting.duplicates() == {}
    assert claims_per_mail(db) == {1}
    assert sum(claimed_by_log(out) for out in outputs) == AT_ONCE
    assert not any("Traceback" in out for out in outputs), outputs
    db.dispose()
