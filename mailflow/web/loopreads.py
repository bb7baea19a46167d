"""Short reads right on the event loop, for the page opened most (the /verify link): cheaper than a hop
to the threadpool and back, which under load queues behind the GIL.

- SQLite (a local file): a query-only engine whose indexed read costs tens of microseconds, so blocking
  the loop for it costs less than the hop. Each thread gets its own connection.
- PostgreSQL (over the network): psycopg's own async pool, so the wait for the server yields the loop.
  Measured on /verify with 32 connections on 2 cores: 880 req/s and p99 51 ms through the threadpool,
  1,540 req/s and p99 29 ms this way (SQLAlchemy's asyncio layer on the same pool: 1,160 and 650 ms).

Any failure here (a lock held too long, a server that went away, a pool with no free connection in
time) raises LoopReadFailed, and the caller reads through the threadpool instead, which has its own
retry. The readers are opened in the app's lifespan, on its event loop; without one (a test client used
without ``with``) there is none and every read goes through the threadpool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import SingletonThreadPool

from mailflow.db import CONNECT_TIMEOUT_SECONDS, READ_POOL_SIZE, Database

# How long a read on the event loop may wait for a SQLite lock before it gives up. In WAL mode readers
# never wait for writers, so this is only a bound.
SQLITE_BUSY_SECONDS = 0.05
# How long a read may wait for a free PostgreSQL connection before it goes through the threadpool.
POOL_WAIT_SECONDS = 2.0

# Autocommit: one SELECT needs no transaction (BEGIN and ROLLBACK were two extra round trips). Read-only
# sessions: like SQLite's query_only, these connections can never write.
READ_ONLY_SESSION = {"autocommit": True, "options": "-c default_transaction_read_only=on",
                     "connect_timeout": CONNECT_TIMEOUT_SECONDS}

Row = dict[str, Any]


class LoopReadFailed(Exception):
    """The read did not happen on the loop; the caller reads another way."""


class LoopReads(Protocol):
    async def first(self, statement: Select, params: dict[str, Any]) -> Row | None:
        """The first row of ``statement`` as a dict of its column keys, None when there is none. The
        parameters are passed as they are (no type conversion), so keep them plain strings and numbers."""
        ...

    async def close(self) -> None: ...


async def open_loop_reads(db: Database) -> LoopReads | None:
    url = db.engine.url
    if url.get_backend_name() == "postgresql":
        return await PostgresLoopReads.open(db)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SQLiteLoopReads(db)
    return None


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA query_only=ON")  # this engine can never write or take a write lock
    cursor.close()


class SQLiteLoopReads:
    def __init__(self, db: Database) -> None:
        self.engine: Engine = create_engine(
            db.engine.url, poolclass=SingletonThreadPool,
            connect_args={"check_same_thread": True, "timeout": SQLITE_BUSY_SECONDS})
        event.listen(self.engine, "connect", _query_only)

    async def first(self, statement: Select, params: dict[str, Any]) -> Row | None:
        try:
            with self.engine.connect() as connection:
                found = connection.execute(statement, params).mappings().first()
        except OperationalError as exc:
            raise LoopReadFailed(type(exc.orig).__name__) from exc
        return dict(found) if found is not None else None

    async def close(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True)
class _Compiled:
    statement: Select  # held so that its id() cannot be reused by another statement while cached
    sql: str
    columns: list[tuple[str, Callable[[Any], Any] | None]]  # each column's key and SQLAlchemy converter


class PostgresLoopReads:
    """psycopg's AsyncConnectionPool of read-only autocommit sessions. Statements are
    compiled once for the psycopg dialect, and their result columns converted by the same SQLAlchemy
    type processors an engine would apply (e.g. UTCDateTime's naive-to-aware)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.dialect = postgresql.psycopg.dialect()
        self.compiled: dict[int, _Compiled] = {}

    @classmethod
    async def open(cls, db: Database) -> PostgresLoopReads:
        conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = AsyncConnectionPool(conninfo, min_size=1, max_size=READ_POOL_SIZE, open=False,
                                   timeout=POOL_WAIT_SECONDS, kwargs=READ_ONLY_SESSION,
                                   name="mailflow-loop-reads")
        await pool.open(wait=False)  # a server that is down now must not stop the app from starting
        return cls(pool)

    def _prepared(self, statement: Select) -> _Compiled:
        compiled = self.compiled.get(id(statement))
        if compiled is None:
            columns = zip(statement.selected_columns.keys(), statement.selected_columns, strict=True)
            compiled = self.compiled[id(statement)] = _Compiled(
                statement, str(statement.compile(dialect=self.dialect)),
                [(key, column.type.result_processor(self.dialect, None)) for key, column in columns])
        return compiled

    async def first(self, statement: Select, params: dict[str, Any]) -> Row | None:
        compiled = self._prepared(statement)
        try:
            async with self.pool.connection() as connection:
                cursor = await connection.execute(compiled.sql, params)
                found = await cursor.fetchone()
        except psycopg.Error as exc:  # PoolTimeout is one too
            raise LoopReadFailed(type(exc).__name__) from exc
        if found is None:
            return None
        return {key: (convert(value) if convert else value)
                for (key, convert), value in zip(compiled.columns, found, strict=True)}

    async def close(self) -> None:
        await self.pool.close()
