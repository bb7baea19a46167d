"""mailflow.db.savepoint nests in the caller's transaction on every database: rolled back with it. On
SQLite a bare begin_nested() before the transaction's first write committed its rows on its own (Python's
sqlite3 opens the transaction only at a write, and the savepoint's RELEASE then commits)."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.db import savepoint
from mailflow.models import JobLease
from mailflow.timeutil import now


def leases_named(ctx: AppContext, name: str) -> int:
    with ctx.db.session() as session:
        return len(session.scalars(select(JobLease).where(JobLease.name == name)).all())


def test_a_savepoint_before_the_first_write_rolls_back_with_its_transaction(ctx: AppContext) -> None:
    with ctx.db.sessionmaker() as session:
        session.scalars(select(JobLease)).all()  # a read first, as the callers do
        with savepoint(session):
            session.add(JobLease(name="savepoint-test", holder="", expires_at=now()))
        session.rollback()
    assert leases_named(ctx, "savepoint-test") == 0


def test_a_savepoint_commits_with_its_transaction(ctx: AppContext) -> None:
    with ctx.db.sessionmaker() as session:
        with savepoint(session):
            session.add(JobLease(name="savepoint-kept", holder="", expires_at=now()))
        session.add(JobLease(name="after-it", holder="", expires_at=now()))
        session.commit()
    assert leases_named(ctx, "savepoint-kept") == leases_named(ctx, "after-it") == 1
