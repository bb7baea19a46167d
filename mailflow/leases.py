"""Singleton jobs across workers: a job runs on whoever holds its lease row; a dead holder's lease
expires and another worker takes over. Works the same on SQLite and PostgreSQL.

Why this is safe with many workers on PostgreSQL: taking a lease is one UPDATE whose WHERE says "mine or
expired"; PostgreSQL re-checks that condition on the newest row version after a concurrent UPDATE
commits, so of two racing workers only one sees a row count of 1. The very first acquisition is an
INSERT and the primary key lets only one of the racers in. Expiry is judged by the database's clock on
PostgreSQL, so workers on machines whose clocks drift apart still agree who holds a lease.

A holder that runs a long job keeps its lease alive with ``hold`` (a renewal thread), so the lease only
expires when the holder stops renewing — which is what dying looks like from the outside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.db import Database, savepoint
from mailflow.models import JobLease
from mailflow.timeutil import now

log = logging.getLogger(__name__)


def db_now(session: Session) -> datetime:
    """The time by the database's clock on PostgreSQL (shared by every worker), else this machine's."""
    if session.get_bind().dialect.name == "postgresql":
        moment = session.execute(text("SELECT now()")).scalar_one()
        if isinstance(moment, datetime):
            return moment
    return now()


def acquire(db: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False when another live holder has it."""
    with db.session() as session:
        moment = db_now(session)
        expires = moment + timedelta(seconds=ttl_seconds)
        result = session.execute(
            update(JobLease)
            .where(JobLease.name == name, or_(JobLease.holder == holder, JobLease.expires_at < moment))
            .values(holder=holder, expires_at=expires)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(JobLease, name) is not None:
            return False
    try:
        with db.session() as session:
            session.add(JobLease(name=name, holder=holder, expires_at=expires))
        return True
    except IntegrityError:
        return False  # another worker created it first


def release(db: Database, name: str, holder: str) -> None:
    """Give the lease up now (only if ``holder`` still has it), so another worker need not wait."""
    with db.session() as session:
        moment = db_now(session)
        session.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(expires_at=moment - timedelta(seconds=1))
        )


def release_all(db: Database, holder: str) -> int:
    """Give up every lease ``holder`` has (a worker shutting down cleanly); returns how many."""
    with db.session() as session:
        moment = db_now(session)
        result = session.execute(
            update(JobLease)
            .where(JobLease.holder == holder, JobLease.expires_at >= moment)
            .values(expires_at=moment - timedelta(seconds=1))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def holder_of(db: Database, name: str) -> str | None:
    """Who holds ``name`` right now, or None when nobody does (never taken, released or expired)."""
    with db.session() as session:
        moment = db_now(session)
        query = select(JobLease.holder, JobLease.expires_at).where(JobLease.name == name)
        row = session.execute(query).first()
    if row is None or row.expires_at < moment:
        return None
    return str(row.holder)


class HeldLease:
    """A lease kept alive by a renewal thread; ``lost`` is set if a renewal found it taken."""

    def __init__(self, db: Database, name: str, holder: str, ttl_seconds: float,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.db, self.name, self.holder, self.ttl = db, name, holder, ttl_seconds
        self.lost = threading.Event()
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease:{name}", daemon=True)

    def _renew(self) -> None:
        # Renewing at a third of the TTL survives one missed renewal (a slow database) without expiring.
        while not self._stop.wait(self.ttl / 3):
            try:
                if not acquire(self.db, self.name, self.holder, self.ttl):
                    log.warning("lease %s was taken over while %s ran its job", self.name, self.holder)
                    self.lost.set()
                    if self._on_lost is not None:
                        self._on_lost()
                    return
            except Exception as exc:  # the database may be restarting; the next renewal tries again
                log.warning("could not renew lease %s: %s", self.name, type(exc).__name__)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def hold(db: Database, name: str, holder: str, ttl_seconds: float,
         on_lost: Callable[[], None] | None = None) -> Iterator[HeldLease | None]:
    """Acquire ``name`` and renew it for as long as the block runs; yields None when someone else
    holds it. ``on_lost`` is called (from the renewal thread) if another worker took it over meanwhile,
    so a job that runs for hours can stop. The lease is kept (not released) afterwards, so the job stays
    with this worker until it stops renewing — releasing would let every other worker run an hourly job
    again at its next tick."""
    if not acquire(db, name, holder, ttl_seconds):
        yield None
        return
    held = HeldLease(db, name, holder, ttl_seconds, on_lost)
    held.start()
    try:
        yield held
    finally:
        held.stop()


def claim_run_key(db: Database, name: str, run_key: str) -> bool:
    """Mark ``run_key`` (e.g. the ISO date of a day) as done for job ``name`` exactly once across all
    workers. Run keys must sort in time order: a worker that comes late with an older key than the
    newest claimed one gets False too, so a lagging worker never repeats yesterday's run."""
    with db.session() as session:
        return claim_run_key_in(session, name, run_key)


def claim_run_key_in(session: Session, name: str, run_key: str) -> bool:
    """claim_run_key inside the caller's transaction: the claim holds only if the caller's work commits
    with it, and a racing worker's claim waits on the row until then (and then finds the key taken)."""
    if session.get(JobLease, name) is None:
        try:
            with savepoint(session):
                session.add(JobLease(name=name, holder="", expires_at=now()))
        except IntegrityError:
            pass  # a racing worker inserted it; the UPDATE below decides who runs
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name,
               or_(JobLease.last_run_key.is_(None), JobLease.last_run_key < run_key))
        .values(last_run_key=run_key)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def run_key_done(db: Database, name: str, run_key: str) -> bool:
    """True when ``run_key`` (or a later one) has been claimed for job ``name``."""
    with db.session() as session:
        last = session.scalar(select(JobLease.last_run_key).where(JobLease.name == name))
        return last is not None and last >= run_key
