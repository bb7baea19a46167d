"""Request limits that hold across workers: at most ``limit`` requests per key in each fixed window of
``window_seconds`` (e.g. 30 account-id checks per client address per 10 minutes).

The count is one row per key (``rate_counters``) and every request moves it with guarded UPDATEs, the
pattern of mailflow.leases: first "open the current window WHERE the stored one has closed", then
"count + 1 WHERE the stored window is the current one AND count < limit". On PostgreSQL a concurrent
UPDATE of the same row waits for the other transaction and re-checks its WHERE on the row that one
committed, so of N racing requests exactly ``limit`` see a row count of 1; SQLite runs writers one at a
time. The first request of a key INSERTs its row in a savepoint; a racer's duplicate key is ignored and
the UPDATEs decide. ``take`` starts with a write, so on SQLite the transaction holds the write lock from
its first statement (see ``ensure_row``).

Call ``take`` in a short transaction of its own and commit at once: the row stays locked until then.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.db import savepoint
from mailflow.models import RateCounter


def window_end(moment: float, window_seconds: int) -> int:
    """The unix second at which the fixed window holding ``moment`` closes."""
    return (int(moment // window_seconds) + 1) * window_seconds


def ensure_row(session: Session, key: str, window_end: int, count: int = 0) -> bool:
    """Make sure ``key`` has its row, racing requests or not; True when this call created it (with
    ``count``). Call it after an UPDATE of the key found nothing: on SQLite a transaction that reads and
    only then writes fails at once when another writer committed in between (its snapshot is stale),
    while one that starts with a write waits its turn (busy_timeout)."""
    if session.scalar(select(RateCounter.count).where(RateCounter.key == key)) is not None:
        return False
    try:
        with savepoint(session):
            session.add(RateCounter(key=key, window_end=window_end, count=count))
    except IntegrityError:
        return False  # a racing request created it
    return True


def take(session: Session, key: str, limit: int, window_seconds: int, at: float | None = None) -> int | None:
    """Count one request for ``key``: None when it is within the limit, else the seconds until the next
    window opens (for a Retry-After header)."""
    moment = time.time() if at is None else at
    closes = window_end(moment, window_seconds)
    key = key[:200]
    for _ in range(2):
        session.execute(update(RateCounter).where(RateCounter.key == key, RateCounter.window_end < closes)
                        .values(window_end=closes, count=0))
        counted = session.execute(
            update(RateCounter)
            .where(RateCounter.key == key, RateCounter.window_end == closes, RateCounter.count < limit)
            .values(count=RateCounter.count + 1)
        )
        if counted.rowcount:  # type: ignore[attr-defined]
            return None
        if limit > 0 and ensure_row(session, key, closes, count=1):
            return None  # the key's first request
    return max(1, math.ceil(closes - moment))


def prune(session: Session, older_than_seconds: int = 24 * 3600, at: float | None = None) -> int:
    """Forget the counters whose window closed more than ``older_than_seconds`` ago; returns how many."""
    moment = time.time() if at is None else at
    result = session.execute(delete(RateCounter).where(RateCounter.window_end < moment - older_than_seconds))
    return int(getattr(result, "rowcount", 0) or 0)
