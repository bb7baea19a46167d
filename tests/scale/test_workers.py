"""Many workers on one PostgreSQL: four `mailflow run --role worker` processes share a queue of 20,000
mails and deliver every one to a counting SMTP sink exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.db import Database
from tests.peers import wait_until
from tests.scale.sink import CountingSink
from tests.scale.workers import (
    Worker,
    claimed_by_log,
    message_ids,
    queue_mails,
    status_counts,
    worker_env,
    workers,
)

MAILS = 20_000


def all_alive(ws: list[Worker]) -> None:
    for w in ws:
        if not w.alive:
            raise AssertionError(f"a worker exited ({w.proc.returncode}):\n{w.output()[-3000:]}")


@pytest.mark.postgres_only
def test_four_workers_deliver_twenty_thousand_mails_each_once(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    queue_mails(db, MAILS)
    with CountingSink() as sink, workers(worker_env(db_url, sink.port, tmp_path), tmp_path, 4) as ws:
        wait_until(lambda: status_counts(db).get("sent", 0) == MAILS, 400, f"{MAILS} mails sent",
                   every=1, check=lambda: all_alive(ws))
        for w in ws:
            assert w.terminate(30) == 0, w.output()[-3000:]
    assert sink.duplicates() == {}
    assert set(sink.received) == message_ids(db)
    assert status_counts(db) == {"sent": MAILS}
    # The queue was shared, not drained by whoever started first: every worker claimed mails.
    claimed = [claimed_by_log(w.output()) for w in ws]
    assert all(n > 0 for n in claimed), claimed
    assert sum(claimed) == MAILS, claimed  # claimed once each: no mail went to two workers
    db.dispose()
