"""FastAPI dependencies shared by every router, and the read-only SQLite engine for the few reads that are
cheaper on the event loop than a thread hop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.db import Database

# How long a read on the event loop may wait for a SQLite lock before it gives up (and the caller goes
# through the threadpool instead). In WAL mode readers never wait for writers, so this is only a bound.
LOOP_READ_BUSY_SECONDS = 0.05
# Page reads in the threadpool at once, per event loop. More only queue on the connection pool (whose
# overflow connections are opened and closed per use) and behind the GIL: on the /verify page under 32
# connections, unbounded reads had a p99 several times that of four at a time.
THREADED_READS = 4

T = TypeVar("T")
_read_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()


# Plain reads of app state are `async def`: FastAPI runs a sync dependency in the threadpool, a thread
# hop per request for nothing.
async def get_ctx(request: Request) -> AppContext:
    return app_ctx(request)


async def get_settings(request: Request) -> Settings:
    return app_ctx(request).settings


def app_ctx(request: Request) -> AppContext:
    """The AppContext the app was created with, for code that has the request but is no dependency."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back when it raises."""
    with app_ctx(request).db.session() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a browser that follows a redirect
# right after a POST always reads the changed data (with the default scope it could race the commit).
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA query_only=ON")  # this engine can never write or take a write lock
    cursor.close()


def loop_read_engine(db: Database) -> Engine | None:
    """For a SQLite file: an engine for short indexed reads run right on the event loop, None otherwise.

    Why: such a read costs tens of microseconds, while handing it to the threadpool and back costs more
    and, under load, makes the hand-offs queue behind the GIL (on the /verify page: 2x the requests/s and
    a quarter of the p99). Each thread (each event loop) gets its own connection, so nothing is shared
    between loops, and no pool checkout can make the loop wait. The connection is query-only and waits
    at most LOOP_READ_BUSY_SECONDS for a lock; a caller falls back to the threadpool on any
    OperationalError. A database over the network (PostgreSQL) is never read on the loop."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    engine = create_engine(url, poolclass=SingletonThreadPool,
                           connect_args={"check_same_thread": True, "timeout": LOOP_READ_BUSY_SECONDS})
    event.listen(engine, "connect", _query_only)
    return engine


def loop_reads(request: Request) -> Engine | None:
    """The app's loop_read_engine (set up by create_app)."""
    engine: Engine | None = getattr(request.app.state, "loop_reads", None)
    return engine


async def run_read(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` — a short database read — in the threadpool, at most THREADED_READS at a time
    on this event loop (a limiter per loop: test clients each run their own)."""
    loop = asyncio.get_running_loop()
    limiter = _read_limiters.get(loop)
    if limiter is None:
        limiter = _read_limiters[loop] = anyio.CapacityLimiter(THREADED_READS)
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
