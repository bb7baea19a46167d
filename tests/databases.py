"""Fresh PostgreSQL databases for the tests, made and dropped off the tests' own time.

Each database test gets a database of its own, copied from a migrated template (CREATE DATABASE ...
TEMPLATE) and dropped after it (DROP DATABASE ... WITH (FORCE), which also ends connections a test left).
Done in the test's setup and teardown, the two statements cost 0.3-2 s a test on the shared VM, most of
the PostgreSQL pass. ``FreshDatabases`` has a background thread make the next few databases while a
test runs and others drop the used ones behind it, so a test waits only when the maker is behind. Every test
still starts on an untouched copy of the template, and none is used twice.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable

from sqlalchemy import Engine, text

# How many databases wait ready: one for the next test and one in case the thread is slow to wake.
AHEAD = 2
# Threads dropping used databases (see FreshDatabases.__init__).
DROPPERS = 4
# A test waiting longer than this for its database fails with the thread's state in the message.
TAKE_TIMEOUT_SECONDS = 120.0


class FreshDatabases:
    """Databases named ``mf_t_<random>``, copies of ``template``; ``take`` one, ``give_back`` it when
    done; ``close`` drops every database it made."""

    def __init__(self, admin: Engine, template: str, ahead: int = AHEAD,
                 name: Callable[[], str] = lambda: f"mf_t_{uuid.uuid4().hex[:12]}") -> None:
        self._admin = admin
        self._template = template
        self._ahead = ahead
        self._name = name
        self._ready: deque[str] = deque()
        self._used: deque[str] = deque()
        self._out: set[str] = set()  # taken and not given back yet
        self._closing = False
        self._failure: Exception | None = None
        self._changed = threading.Condition()
        # A maker apart from the droppers, so that a test waiting for its database never waits behind a
        # drop; several droppers, because each DROP DATABASE waits for a checkpoint and the checkpointer
        # serves the requests that wait at the same time with one checkpoint.
        self._maker = threading.Thread(target=self._make, name="fresh-databases-make", daemon=True)
        self._droppers = [threading.Thread(target=self._drop, name=f"fresh-databases-drop-{i}", daemon=True)
                          for i in range(DROPPERS)]
        self._maker.start()
        for dropper in self._droppers:
            dropper.start()

    def take(self) -> str:
        with self._changed:
            self._changed.notify_all()
            ready = self._changed.wait_for(lambda: self._ready or self._failure is not None,
                                           timeout=TAKE_TIMEOUT_SECONDS)
            if self._failure is not None:
                raise RuntimeError("the test databases' maker failed") from self._failure
            if not ready:
                raise TimeoutError(f"no test database after {TAKE_TIMEOUT_SECONDS:g} s "
                                   f"(maker alive: {self._maker.is_alive()})")
            name = self._ready.popleft()
            self._out.add(name)
            self._changed.notify_all()
            return name

    def give_back(self, name: str) -> None:
        with self._changed:
            self._out.discard(name)
            self._used.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        """Stop making databases and drop every one made (used, waiting or still out) before returning."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._maker.join()
        with self._changed:
            self._changed.notify_all()  # the dropper now drops what is left
        for dropper in self._droppers:
            dropper.join()
        if self._failure is not None:
            raise RuntimeError("the test databases' maker failed") from self._failure

    def _next_create(self) -> str | None:
        """The name of the next database to make, or None once closing; waits while enough are ready."""
        with self._changed:
            while True:
                if self._closing:
                    return None
                if len(self._ready) < self._ahead and self._failure is None:
                    return self._name()
                self._changed.wait()

    def _next_drop(self) -> str | None:
        """The next database to drop, or None when closing and nothing is left; waits while none is due."""
        with self._changed:
            while True:
                if self._used:
                    return self._used.popleft()
                if self._closing and not self._maker.is_alive():
                    if self._ready:
                        return self._ready.popleft()
                    if self._out:  # a taker that never gave back: dropped all the same
                        return self._out.pop()
                    return None
                self._changed.wait(timeout=0.5 if self._closing else None)

    def _make(self) -> None:
        # A commit need not wait for its WAL to reach the disk (synchronous_commit=off, for connections to
        # this database only): 8.6 -> 0.3 ms a commit on the shared VM. Locking, isolation and what a
        # transaction sees are unchanged; only a crash of this server could lose the last commits, and no
        # test crashes it (tests/scale starts clusters of its own for that).
        self._run(self._next_create, ('CREATE DATABASE "{name}" TEMPLATE "{template}"',
                                      'ALTER DATABASE "{name}" SET synchronous_commit = off'), made=True)

    def _drop(self) -> None:
        self._run(self._next_drop, ('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',), made=False)

    def _run(self, next_name: Callable[[], str | None], statements: tuple[str, ...], *, made: bool) -> None:
        try:
            conn = self._admin.connect()
        except Exception as exc:  # PostgreSQL does not answer: the waiting test says so
            self._fail(exc)
            return
        with conn:
            while (name := next_name()) is not None:
                try:
                    for statement in statements:
                        conn.execute(text(statement.format(name=name, template=self._template)))
                except Exception as exc:  # told to the test that waits (take) or to close(), not lost
                    self._fail(exc)
                    continue
                if made:
                    with self._changed:
                        self._ready.append(name)
                        self._changed.notify_all()

    def _fail(self, exc: Exception) -> None:
        with self._changed:
            self._failure = self._failure or exc
            self._changed.notify_all()
