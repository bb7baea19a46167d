"""The /verify page's reads on the event loop (mailflow.web.loopreads): read-only, seeing what the
threadpool sees at once, and falling back to the threadpool when the loop's read fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mailflow.accounts.tokens import preview_token, preview_token_on_loop
from mailflow.context import AppContext
from mailflow.db import Database
from mailflow.web.loopreads import PostgresLoopReads, SQLiteLoopReads
from tests.factories import PASSWORD, add_account
from tests.web.test_verify import mail_link


def test_the_page_sees_a_completion_at_once(ctx: AppContext, client: TestClient) -> None:
    link = mail_link(ctx, add_account(ctx))
    assert client.get(link).status_code == 200
    assert client.post(link, data={"password": PASSWORD}).status_code == 200
    assert client.get(link).status_code == 410  # the read on the event loop is no stale snapshot


def test_reads_on_the_event_loop_can_never_write(ctx: AppContext, client: TestClient) -> None:
    reads = loop_reads_of(client)
    if isinstance(reads, PostgresLoopReads):
        async def delete() -> None:
            async with reads.pool.connection() as connection:
                await connection.execute("DELETE FROM verification_tokens")

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            portal(client).call(delete)
        return
    assert isinstance(reads, SQLiteLoopReads)
    with pytest.raises(OperationalError), reads.engine.connect() as connection:
        connection.execute(text("DELETE FROM verification_tokens"))


def test_a_read_on_the_event_loop_finds_what_the_threadpool_finds(ctx: AppContext,
                                                                   client: TestClient) -> None:
    """Same row, same types (e.g. an aware expiry time) whichever way the page reads its token."""
    token = mail_link(ctx, add_account(ctx)).rsplit("/", 1)[1]
    on_loop = portal(client).call(preview_token_on_loop, loop_reads_of(client), ctx.settings, token)
    assert on_loop == ctx.db.read_once_more(lambda connection: preview_token(connection, ctx.settings, token))
    assert on_loop.expires_at.tzinfo is not None and on_loop.account == "example1234"


def test_the_page_falls_back_to_the_threadpool_when_the_loop_read_fails(
        ctx: AppContext, client: TestClient, tmp_path: Path) -> None:
    link = mail_link(ctx, add_account(ctx))
    if ctx.db.is_postgres:  # a server that does not answer: the pool gives up after POOL_WAIT_SECONDS
        gone = Database("postgresql+psycopg://postgres@127.0.0.1:9/none")
        broken: Any = portal(client).call(PostgresLoopReads.open, gone)
    else:  # a path that is a directory: SQLite cannot open it
        (tmp_path / "not-a-database").mkdir()
        broken = SQLiteLoopReads(Database(f"sqlite:///{tmp_path / 'not-a-database'}"))
    client.app.state.loop_reads = broken  # type: ignore[attr-defined]
    try:
        page = client.get(link)
    finally:
        portal(client).call(broken.close)
    assert page.status_code == 200 and "example1234" in page.text


def portal(client: TestClient) -> Any:
    """The client's event loop (the app's lifespan ran on it), to run the app's async pieces there."""
    return client.portal


def loop_reads_of(client: TestClient) -> Any:
    return client.app.state.loop_reads  # type: ignore[attr-defined]
