"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.context import AppContext


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_settings(request: Request) -> Settings:
    return get_ctx(request).settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back when it raises."""
    with get_ctx(request).db.session() as session:
        yield session


# scope="function": the commit happens before the response is sent, so a browser that follows a redirect
# right after a POST always reads the changed data (with the default scope it could race the commit).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
