"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.context import AppContext


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
