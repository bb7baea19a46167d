"""PostgreSQL restarted under load (on a cluster of the test's own): workers reconnect and lose nothing,
/healthz answers 503 while the database is down and 200 once it is back, and the verification page,
whose pooled connections all died with the server, answers at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailflow.config import load_settings
from mailflow.context import AppContext
from mailflow.db import Database, init_schema
from tests.factories import add_account
from tests.peers import wait_until
from tests.scale import pgcluster
from tests.scale.sink import CountingSink
from tests.scale.test_faults import all_sent, check_alive, reclaimed
from tests.scale.workers import Worker, message_ids, queue_mails, status_counts, worker_env
from tests.web.test_verify import mail_link

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not pgcluster.available(), reason="needs root and Debian's PostgreSQL 15 server"),
]


@pytest.fixture
def cluster() -> Iterator[pgcluster.Cluster]:
    own = pgcluster.Cluster().init()
    own.start()
    try:
        yield own
    finally:
        own.destroy()


def health(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
    except httpx.TransportError:
        return 0  # the web process is not listening (yet)


def verify_page(port: int, link: str) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{link}", timeout=10).status_code
    except httpx.TransportError:
        return 0


def test_workers_ride_out_a_database_restart(cluster: pgcluster.Cluster, tmp_path: Path) -> None:
    queued = 2000
    url = cluster.create_database("mailflow")
    db = Database(url)
    init_schema(db)
    queue_mails(db, queued)
    http_port = pgcluster.free_port()
    with CountingSink() as sink:
        env = worker_env(url, sink.port, tmp_path, schedule__lease_seconds=5, schedule__dispatch_batch=100,
                         http__port=http_port)
        ctx = AppContext.from_settings(load_settings(None, {k: v for k, v in env.items()
                                                            if k.startswith("MAILFLOW_")}))
        link = mail_link(ctx, add_account(ctx))
        ctx.db.dispose()
        mails = queued + 1  # and the verification mail
        ws = [Worker(env, tmp_path), Worker(env, tmp_path)]
        web = Worker(env, tmp_path, role="web")
        try:
            wait_until(lambda: health(http_port) == 200, 60, "/healthz 200", check=lambda: check_alive([web]))
            assert [verify_page(http_port, link) for _ in range(8)] == [200] * 8  # its pools hold connections
            wait_until(lambda: sink.total() >= 200, 120, "mail flowing", check=lambda: check_alive(ws))
            db.dispose()  # our own connections must not keep a stale pool either
            cluster.stop()
            wait_until(lambda: health(http_port) == 503, 30, "/healthz 503 while the database is down")
            wait_until(lambda: all(w.alive for w in ws), 1, "workers survive the outage")
            cluster.start()
            wait_until(lambda: health(http_port) == 200, 60, "/healthz 200 after the restart")
            # Every pooled read connection is dead: each read falls back or retries on a fresh one.
            assert [verify_page(http_port, link) for _ in range(8)] == [200] * 8
            wait_until(lambda: all_sent(db, mails), 300, "every mail sent after the restart", every=1,
                       check=lambda: check_alive([*ws, web]))
        finally:
            for w in [*ws, web]:
                w.close()
    assert set(sink.received) == message_ids(db)
    assert status_counts(db) == {"sent": mails}
    # A result that could not be stored while the database was down is sent again after its lease.
    assert set(sink.duplicates()) <= set(reclaimed(db))
    db.dispose()
