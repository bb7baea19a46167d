"""Waking dispatch the moment a transaction that queued mail commits, instead of at its next interval.

Queueing marks the session (``mail_queued``, called by outbox.enqueue and by an operator's retry). On
PostgreSQL the mark also sends ``NOTIFY mailflow_outbox`` inside that transaction: PostgreSQL delivers
it to the listening workers only when the transaction commits, and never for one rolled back. In this
process the session's after_commit event sets WAKE, and after_rollback forgets the mark: a rolled-back
registration wakes nothing, and its mail does not exist to be sent.

Each worker listens (``Listener``) on a connection of its own and sets WAKE for every notification; its
dispatch loop (mailflow.scheduler.DispatchLoop) runs a tick when WAKE is set. When many workers wake at
once, each runs a tick, and the claim's SKIP LOCKED (dispatch.claim_batch) lets one take the new mail
while the others skip its locked row, find nothing due and go back to sleep: no one waits on another.
The interval poll stays as the safety net: for a notification missed while a listener reconnected, and
for SQLite, where a separate process (a CLI command) cannot signal the daemon.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "mailflow_outbox"
WAKE = threading.Event()  # set when mail was committed: this process's dispatch loop runs a tick
_MARK = "mailflow.mail_queued"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
RECONNECT_SECONDS = 1.0
LISTEN_SLICE_SECONDS = 1.0  # how often a listener looks up from waiting to see whether it should stop


def mail_queued(session: Session) -> None:
    """Note that this transaction queues mail: wake dispatch when (and only if) it commits."""
    if session.info.get(_MARK):
        return  # one notification per transaction is enough, whatever it queues
    session.info[_MARK] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_MARK, False):
        WAKE.set()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_MARK, None)


class Listener:
    """LISTEN mailflow_outbox on a PostgreSQL connection of its own, in a thread; every notification
    sets WAKE. A lost connection is opened again (and WAKE set: something may have been missed)."""

    def __init__(self, database_url: str) -> None:
        # psycopg's own connection string: the SQLAlchemy URL without its driver name.
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.halt = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in force (tests wait for it)
        self.thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self.halt.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        complained = False
        while not self.halt.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    WAKE.set()  # whatever was committed while no one listened
                    self.listening.set()
                    log.info("outbox listener: listening on %s%s", CHANNEL, " again" if complained else "")
                    complained = False
                    self._wait_on(conn)
            except (psycopg.Error, OSError) as exc:
                if not complained:  # once per outage; the interval poll carries on meanwhile
                    log.warning("outbox listener: %s; dispatch polls until it is back", type(exc).__name__)
                    complained = True
            self.listening.clear()
            self.halt.wait(RECONNECT_SECONDS)

    def _wait_on(self, conn: Any) -> None:
        while not self.halt.is_set():
            for _ in conn.notifies(timeout=LISTEN_SLICE_SECONDS):
                WAKE.set()
