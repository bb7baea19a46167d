"""The Notifications API's writers take turns on SQLite.

SQLite lets one writer in at a time; the others wait in its busy handler, which polls with sleeps that
grow to 100 ms. With 32 API requests at once, most of the time went to waiters sleeping while the lock
was free: POST /api/v1/notifications managed 8 requests/s with a p50 of 1.4 s (docs/BENCHMARKS.md). A
process lock in front of the database's own hands the turn over at once. Other processes still meet
SQLite's lock, as before; PostgreSQL locks rows, not the database, and gets no lock here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from mailflow.db import Database

_turns: WeakKeyDictionary[Database, threading.Lock] = WeakKeyDictionary()
_guard = threading.Lock()


def _turn(db: Database) -> threading.Lock:
    with _guard:
        lock = _turns.get(db)
        if lock is None:
            lock = _turns[db] = threading.Lock()
        return lock


@contextmanager
def writer_turn(db: Database) -> Iterator[None]:
    """Hold this process's turn to write to ``db`` when it is SQLite (nothing on PostgreSQL). Take it
    after the reads, just before the first write, and commit before leaving."""
    if db.is_postgres:
        yield
        return
    with _turn(db):
        yield
