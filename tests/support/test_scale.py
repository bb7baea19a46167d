"""/support with 100,000 items: every page, filter and search still answers from an index. Prints the
timings (no timed asserts: speed is reported, correctness is asserted)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import Account, Application, Document, SupportItem, SupportKind
from mailflow.support import queries
from mailflow.support.items import KINDS
from mailflow.timeutil import now
from tests.factories import make_staff, sign_in

T = TypeVar("T")
ITEMS = 100_000
ACCOUNTS = 1_000


def bulk_seed(ctx: AppContext) -> None:
    start = now()
    with ctx.db.session() as session:
        session.execute(
            insert(Document),
            [
                {
                    "stored_name": "bulk-doc",
                    "original_name": "a.pdf",
                    "content_type": "application/pdf",
                    "size": 1,
                    "sha256": "0" * 64,
                }
            ],
        )
        session.execute(
            insert(Account),
            [
                {
                    "account": f"user{i:05d}",
                    "account_key": f"user{i:05d}",
                    "name": f"申請人{i}",
                    "mobile": "0912345678",
                    "email": f"user{i:05d}@example.com",
                    "email_key": f"user{i:05d}@example.com",
                    "password_hash": "x",
                }
                for i in range(ACCOUNTS)
            ],
        )
        session.execute(
            insert(Application),
            [
                {
                    "account_id": i + 1,
                    "ubn": f"{10000000 + i}",
                    "ubn_key": f"{10000000 + i}",
                    "company_phone": "02-1",
                    "company_name": f"公司{i}",
                    "company_address": "高雄市",
                    "company_owner": "陳",
                    "document_id": 1,
                }
                for i in range(ACCOUNTS)
            ],
        )
        session.execute(
            insert(SupportItem),
            [
                {
                    "kind": KINDS[i % len(KINDS)],
                    "created_at": start - timedelta(minutes=i),
                    "account_id": i % ACCOUNTS + 1,
                    "address": f"user{i % ACCOUNTS:05d}@example.com",
                    "reason": "userunknown",
                    "resolved_at": start if i % 3 == 0 else None,
                }
                for i in range(ITEMS)
            ],
        )


def timed(label: str, call: Callable[[], T]) -> T:
    began = time.perf_counter()
    result = call()
    print(f"  {label}: {(time.perf_counter() - began) * 1000:.1f} ms")
    return result


@pytest.mark.once
def test_the_dashboard_with_100000_items(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    began = time.perf_counter()
    bulk_seed(ctx)
    print(f"\n/support with {ITEMS:,} items (SQLite); bulk insert {time.perf_counter() - began:.1f} s")
    with ctx.db.session() as session:
        plan = " ".join(
            str(row[-1])
            for row in session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM support_items WHERE resolved_at IS NULL "
                    "ORDER BY created_at DESC, id DESC LIMIT 51"
                )
            )
        )
        assert "ix_support_open" in plan, plan
        open_filter = queries.ItemFilter()
        first = timed("first page of open items", lambda: queries.page_items(session, open_filter))
        assert len(first.items) == 50 and first.next_cursor is not None
        after: queries.Cursor | None = first.next_cursor
        for _ in range(200):  # walk 200 pages, then time page 202
            after = queries.page_items(session, open_filter, after).next_cursor
        deep = timed("page 202 by keyset", lambda: queries.page_items(session, open_filter, after))
        assert len(deep.items) == 50 and deep.items[0].created_at <= first.items[-1].created_at
        kind_filter = queries.ItemFilter(kind=SupportKind.REPLY)
        page = timed("first page of one kind", lambda: queries.page_items(session, kind_filter))
        assert {item.kind for item in page.items} == {SupportKind.REPLY}
        found = timed("search by 統編", lambda: queries.page_items(session, queries.ItemFilter(q="10000042")))
        assert found.items and {item.account_id for item in found.items} == {43}
        found = timed(
            "search by address",
            lambda: queries.page_items(session, queries.ItemFilter(q="user00042@example.com", state="all")),
        )
        assert len(found.items) == 50
        total = timed("count open", lambda: queries.count_items(session, open_filter))
        assert total == ITEMS - len(range(0, ITEMS, 3))
    with ctx.db.session() as session:
        staff = make_staff(session)
    sign_in(client, settings, staff)
    answer = timed("GET /support (whole page)", lambda: client.get("/support"))
    assert answer.status_code == 200 and answer.text.count('class="support-item"') == 50
    answer = timed(
        "GET /support/export.csv?kind=reply", lambda: client.get("/support/export.csv?kind=reply&state=all")
    )
    lines = answer.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + len(range(KINDS.index(SupportKind.REPLY), ITEMS, len(KINDS)))
