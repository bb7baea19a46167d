"""Singleton jobs across workers: a job runs on whoever holds its lease row; a dead holder's lease
expires and another worker takes over. Works the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from mailflow.db import Database
from mailflow.models import JobLease
from mailflow.timeutil import now


def acquire(db: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False when another live holder has it."""
    moment = now()
    expires = moment + timedelta(seconds=ttl_seconds)
    with db.session() as session:
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
    with db.session() as session:
        session.execute(
            update(JobLease).where(JobLease.name == name, JobLease.holder == holder).values(expires_at=now())
        )


def claim_run_key(db: Database, name: str, run_key: str) -> bool:
    """Mark ``run_key`` (e.g. a date) as done for job ``name`` exactly once across all workers."""
    with db.session() as session:
        if session.get(JobLease, name) is None:
            try:
                with session.begin_nested():
                    session.add(JobLease(name=name, holder="", expires_at=now()))
            except IntegrityError:
                pass
        result = session.execute(
            update(JobLease)
            .where(JobLease.name == name, or_(JobLease.last_run_key.is_(None), JobLease.last_run_key != run_key))
            .values(last_run_key=run_key)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
