"""FastAPI dependencies shared by every router, and the bounded threadpool reads of pages that have
nothing to commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models.base import MAX_ROW_ID
from mailflow.web.loopreads import LoopReads

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


# Every id in a path: a number a row can have. Anything else (0, 20 digits) fails validation, which the app
# answers 404 — it names nothing — before any query runs.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class RowIdConvertor(Convertor[int]):
    """``{name:rowid}`` in a path, for a route that must not match a word in that place (``/dev/mailbox/
    {id}`` beside ``/dev/mailbox/api``): at most 20 digits, so a longer number simply matches no route (404).
    Starlette's ``:int`` matches any run of digits and then fails on 5,000 of them, past Python's limit
    for converting a string to an int: a 500."""

    regex = "[0-9]{1,20}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("rowid", RowIdConvertor())


def loop_reads(request: Request) -> LoopReads | None:
    """The app's reads on the event loop (opened in its lifespan), None when there are none."""
    reads: LoopReads | None = getattr(request.app.state, "loop_reads", None)
    return reads


async def run_read(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` — a short database read — in the threadpool, at most THREADED_READS at a time
    on this event loop (a limiter per loop: test clients each run their own)."""
    loop = asyncio.get_running_loop()
    limiter = _read_limiters.get(loop)
    if limiter is None:
        limiter = _read_limiters[loop] = anyio.CapacityLimiter(THREADED_READS)
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
