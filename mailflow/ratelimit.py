"""Request limits that hold across workers: at most ``limit`` requests per key in each fixed window of
``window_seconds`` (e.g. 30 account-id checks per client address per 10 minutes).

The count is one row per key (``rate_counters``) and every request moves it with guarded UPDATEs, the
pattern of mailflow.leases: first "open the current window WHERE the stored one has closed", then
"count + 1 WHERE the stored window is the current one AND count < limit". On PostgreSQL a concurrent
UPDATE of the same row waits for the other transaction and re-checks its WHERE on the row that one
committed, so of N racing requests exactly ``limit`` see a row count of 1; SQLite runs writers one at a
time. The first request of a key INSERTs its row in a savepoint; a racer's duplicate key is ignored and
the UPDATEs decide.

Call ``take`` in a short transaction of its own and commit at once: the row stays locked until then.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.models import RateCounter


def take(session: Session, key: str, limit: int, window_seconds: int, at: float | None = None) -> int | None:
    """Count one request for ``key``: None when it is within the limit, else the seconds until the next
    window opens (for a Retry-After header)."""
    moment = time.time() if at is None else at
    window_end = (int(moment // window_seconds) + 1) * window_seconds
    key = key[:200]
    if session.get(RateCounter, key) is None:
        try:
            with session.begin_nested():
                session.add(RateCounter(key=key, window_end=window_end, count=0))
        except IntegrityError:
            pass  # a racing request created it; the UPDATEs below count both
    session.execute(update(RateCounter).where(RateCounter.key == key, RateCounter.window_end < window_end)
                    .values(window_end=window_end, count=0))
    counted = session.execute(
        update(RateCounter)
        .where(RateCounter.key == key, RateCounter.window_end == window_end, RateCounter.count < limit)
        .values(count=RateCounter.count + 1)
    )
    if counted.rowcount:  # type: ignore[attr-defined]
        return None
    return max(1, math.ceil(window_end - moment))


def prune(session: Session, older_than_seconds: int = 24 * 3600, at: float | None = None) -> int:
    """Forget the counters whose window closed more than ``older_than_seconds`` ago; returns how many."""
    moment = time.time() if at is None else at
    result = session.execute(delete(RateCounter).where(RateCounter.window_end < moment - older_than_seconds))
    return int(getattr(result, "rowcount", 0) or 0)
