"""Faults while mail flows, each bounded in time, all traffic on 127.0.0.1: a worker SIGKILLed in the
middle of a batch again and again, a relay that refuses, hangs up mid-DATA or is down, and a stop signal
under load. Whatever happens, every queued mail reaches the sink, and every duplicate is explained by a
sending lease that expired."""

from __future__ import annotations

import functools
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow import leases
from mailflow.db import Database
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus
from tests.peers import wait_until
from tests.scale.sink import CountingSink, Fault
from tests.scale.workers import Worker, message_ids, queue_mails, status_counts, worker_env

HOST = socket.gethostname()


def check_alive(ws: list[Worker]) -> None:
    for w in ws:
        if not w.alive:
            raise AssertionError(f"a worker exited ({w.proc.returncode}):\n{w.output()[-3000:]}")


def sending_by(db: Database, worker: Worker) -> int:
    with db.session() as session:
        return len(session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.claimed_by == f"{HOST}:{worker.proc.pid}")).all())


def mid_batch(db: Database, ws: list[Worker]) -> Worker | None:
    return next((w for w in ws if w.alive and sending_by(db, w) > 0), None)


def reclaimed(db: Database) -> dict[str, str]:
    """Message-ID → the reclaim note of every mail whose sending lease expired and was queued again."""
    with db.session() as session:
        rows = session.execute(
            select(OutboxMessage.message_id, OutboxEvent.detail)
            .join(OutboxEvent, OutboxEvent.outbox_id == OutboxMessage.id)
            .where(OutboxEvent.from_status == OutboxStatus.SENDING,
                   OutboxEvent.detail.like("lease of % expired%")))
        return {mid: str(detail) for mid, detail in rows}


def refused_at_least(sink: CountingSink, fault: str, n: int) -> bool:
    return sink.handler.refused_by[fault] >= n


def all_sent(db: Database, n: int) -> bool:
    return status_counts(db).get(OutboxStatus.SENT, 0) == n


@pytest.mark.postgres_only
def test_sigkill_mid_batch_ten_times_loses_nothing(db_url: str, tmp_path: Path) -> None:
    mails, kills = 10_000, 10
    db = Database(db_url)
    queue_mails(db, mails)
    with CountingSink() as sink:
        env = worker_env(db_url, sink.port, tmp_path, schedule__lease_seconds=5, schedule__dispatch_batch=100)
        ws = [Worker(env, tmp_path) for _ in range(3)]
        killed: list[str] = []
        try:
            for round_ in range(kills):
                # Kill a worker seen holding a claimed batch: it is mid-batch by definition.
                wait_until(lambda: mid_batch(db, ws) is not None, 120,
                           f"a worker mid-batch (kill {round_ + 1})", every=0.05,
                           check=lambda: check_alive(ws))
                victim = mid_batch(db, ws) or ws[0]
                victim.kill()
                killed.append(f"{HOST}:{victim.proc.pid}")
                ws[ws.index(victim)] = Worker(env, tmp_path)
            wait_until(lambda: all_sent(db, mails), 300, f"{mails} mails sent after {kills} kills", every=1,
                       check=lambda: check_alive(ws))
        finally:
            for w in ws:
                w.close()
    assert set(sink.received) == message_ids(db)  # nothing lost
    notes = reclaimed(db)
    # Every kill left claimed mails behind, and their leases expired and were taken back.
    assert all(any(f"lease of {k} expired" in note for note in notes.values()) for k in killed), killed
    # Each duplicate is a mail whose lease expired: sent by the dead worker, then again after reclaim.
    assert set(sink.duplicates()) <= set(notes)
    db.dispose()


def test_relay_refusing_dropping_and_down_then_every_mail_arrives(db_url: str, tmp_path: Path) -> None:
    mails = 300
    db = Database(db_url)
    queue_mails(db, mails)
    sink = CountingSink().start()
    # Retries start at ~0.1 s and are capped at 3 s: the test's "two minutes down" is a few seconds.
    env = worker_env(db_url, sink.port, tmp_path, schedule__retry_first_minutes=0.002,
                     schedule__retry_max_minutes=0.05, schedule__dispatch_batch=50, smtp__timeout_seconds=5)
    ws = [Worker(env, tmp_path) for _ in range(2)]
    try:
        # Each phase waits for refusals of its own fault: a count shared by all phases could be reached
        # by the first one alone, and a later fault would then never be met.
        for fault, refusals in ((Fault.TEMPFAIL_421, 30), (Fault.TEMPFAIL_451, 30), (Fault.DROP_IN_DATA, 30)):
            sink.handler.fault = fault
            wait_until(functools.partial(refused_at_least, sink, fault, refusals), 120,
                       f"{refusals} refusals ({fault})", every=0.05, check=lambda: check_alive(ws))
        sink.stop()  # down: connections are refused
        downtime_until = time.monotonic() + 3
        wait_until(lambda: time.monotonic() > downtime_until, 10, "the outage", check=lambda: check_alive(ws))
        sink.handler.fault = Fault.NONE
        sink.start()
        wait_until(lambda: all_sent(db, mails), 120, "every mail sent after the relay recovered",
                   check=lambda: check_alive(ws))
    finally:
        for w in ws:
            w.close()
        sink.stop()
    assert set(sink.received) == message_ids(db)
    assert sink.duplicates() == {}
    with db.session() as session:
        details = " ".join(str(d) for d in session.scalars(
            select(OutboxEvent.detail).where(OutboxEvent.to_status == OutboxStatus.RETRY)))
    for seen in ("421", "451", "network error"):  # each fault was met and became a retry, not a failure
        assert seen in details, seen
    db.dispose()


def test_sigterm_under_load_finishes_or_releases_in_flight_mail(db_url: str, tmp_path: Path) -> None:
    mails = 1500
    db = Database(db_url)
    queue_mails(db, mails)
    with CountingSink() as sink:
        env = worker_env(db_url, sink.port, tmp_path, schedule__dispatch_batch=100,
                         schedule__reminder_check_seconds=0.5)
        worker = Worker(env, tmp_path)
        try:
            me = f"{HOST}:{worker.proc.pid}"
            wait_until(lambda: leases.holder_of(db, "job:reminders") == me, 120, "the reminders lease taken",
                       every=0.05, check=lambda: check_alive([worker]))
            wait_until(lambda: sending_by(db, worker) > 0 and sink.total() > 100, 120, "the worker mid-batch",
                       every=0.05, check=lambda: check_alive([worker]))
            code = worker.terminate(timeout=30)  # the promise: out within 30 s
        finally:
            worker.close()
        assert code == 0, worker.output()[-3000:]
        counts = status_counts(db)
        assert counts.get(OutboxStatus.SENDING, 0) == 0, counts  # nothing left claimed by the dead
        assert counts.get(OutboxStatus.SENT, 0) == sink.total()  # every accepted mail was recorded
        assert counts.get(OutboxStatus.SENT, 0) < mails, "the stop came too late to test anything"
        assert leases.holder_of(db, "job:reminders") is None  # singleton leases handed over
        successor = Worker(env, tmp_path)
        try:
            wait_until(lambda: all_sent(db, mails), 300, "the rest sent by the next worker",
                       check=lambda: check_alive([successor]))
        finally:
            successor.close()
    assert set(sink.received) == message_ids(db)
    assert sink.duplicates() == {}
    db.dispose()
