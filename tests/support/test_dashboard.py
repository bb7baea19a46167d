"""/support as customer service uses it: who may enter, the grouped list, filters, search, pages, CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import AuditEvent, SupportItem, SupportKind
from mailflow.timeutil import now, taipei
from tests.factories import (
    ago,
    csrf_of,
    make_applicant,
    make_bounce_item,
    make_item,
    make_mail,
    make_staff,
    sign_in,
)


def seed_bounce(ctx: AppContext, **applicant: Any) -> int:
    with ctx.db.session() as session:
        acc, app = make_applicant(session, **applicant)
        item = make_bounce_item(session, acc, app, make_mail(session, acc))
        return item.id


def support_client(
    ctx: AppContext, client: TestClient, settings: Settings, role: str = "support"
) -> TestClient:
    with ctx.db.session() as session:
        staff = make_staff(session, name=f"staff-{role}", role=role)
    sign_in(client, settings, staff)
    return client


def test_without_a_session_support_redirects_to_the_staff_login(client: TestClient) -> None:
    answer = client.get("/support?kind=reply", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/staff/login?next=%2Fsupport")


def test_a_reviewer_only_staff_member_gets_403(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    support_client(ctx, client, settings, role="reviewer")
    assert client.get("/support").status_code == 403
    assert client.get("/support/export.csv").status_code == 403


def test_admin_may_use_support(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    support_client(ctx, client, settings, role="admin")
    assert client.get("/support").status_code == 200


def test_an_item_shows_the_applicant_company_mail_and_reason_in_zh_tw(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    item_id = seed_bounce(ctx)
    support_client(ctx, client, settings)
    page = client.get("/support")
    assert page.status_code == 200
    html = page.text
    for expected in (
        "永久退信",
        "王小明",
        "wang1234",
        "臺灣港務股份有限公司基隆分公司",
        "04595257",
        "0912345678",
        "帳號審核通過通知",
        "收件人信箱不存在",
        "550 5.1.1",
        f"/support/items/{item_id}",
        "<svg",
    ):
        assert expected in html, expected
    raw_link = re.search(r'href="(/support/inbound/\d+/raw)"', html)
    assert raw_link
    raw = client.get(raw_link.group(1))
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
    assert "user unknown" in raw.text


def test_items_are_grouped_by_kind_newest_first(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    with ctx.db.session() as session:
        make_item(session, SupportKind.REPLY, address="old@example.com", created_at=ago(hours=5))
        make_item(session, SupportKind.COMPLAINT, address="c@example.com", created_at=ago(hours=3))
        make_item(session, SupportKind.REPLY, address="new@example.com", created_at=ago(hours=1))
    support_client(ctx, client, settings)
    html = client.get("/support").text
    assert html.index('id="group-complaint"') < html.index('id="group-reply"')  # the fixed kind order
    replies = html[html.index('id="group-reply"') :]
    assert replies.index("new@example.com") < replies.index("old@example.com")


def test_filters_kind_state_and_dates(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    with ctx.db.session() as session:
        make_item(session, SupportKind.REPLY, address="open-reply@example.com")
        make_item(session, SupportKind.REPLY, address="done-reply@example.com", resolved=True)
        make_item(session, SupportKind.COMPLAINT, address="complaint@example.com")
        make_item(session, SupportKind.COMPLAINT, address="ancient@example.com", created_at=ago(days=40))
    support_client(ctx, client, settings)
    html = client.get("/support?kind=reply").text
    assert "open-reply@" in html and "done-reply@" not in html and "complaint@" not in html
    html = client.get("/support?kind=reply&state=resolved").text
    assert "done-reply@" in html and "open-reply@" not in html
    html = client.get("/support?state=all").text
    assert "done-reply@" in html and "open-reply@" in html
    since = (taipei(now()).date() - timedelta(days=7)).isoformat()
    html = client.get(f"/support?from={since}").text
    assert "complaint@" in html and "ancient@" not in html
    old_day = taipei(ago(days=40)).date().isoformat()
    html = client.get(f"/support?from={old_day}&to={old_day}").text
    assert "ancient@" in html and "complaint@" not in html


def test_bad_filter_values_get_a_clear_answer_not_a_500(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    support_client(ctx, client, settings)
    page = client.get("/support?kind=nonsense&from=2024-13-45&to=yesterday&state=x&after=%%%")
    assert page.status_code == 200
    for message in ("不明的項目類別", "日期格式應為 YYYY-MM-DD", "狀態只能是"):
        assert message in page.text
    assert client.get("/support/export.csv?from=bad").status_code == 422


def test_search_by_account_ubn_and_address(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    seed_bounce(ctx)
    seed_bounce(ctx, account="lee5678", name="李大同", email="lee@example.org", ubn="22099131")
    support_client(ctx, client, settings)
    for query in ("wang1234", "WANG", "04595257", "wang@example.com"):
        html = client.get("/support", params={"q": query}).text
        assert "王小明" in html and "李大同" not in html, query
    html = client.get("/support", params={"q": "22099131"}).text
    assert "李大同" in html and "王小明" not in html
    html = client.get("/support", params={"q": "nobody%_"}).text
    assert "沒有符合條件的項目" in html


def test_pages_walk_every_item_once(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    same_moment = ago(hours=2)
    with ctx.db.session() as session:
        for i in range(60):  # ties on created_at must not lose or repeat items across pages
            make_item(
                session,
                SupportKind.REPLY,
                address=f"r{i:02d}@example.com",
                created_at=same_moment if i % 2 else ago(minutes=i),
            )
    support_client(ctx, client, settings)
    seen: list[str] = []
    url = "/support?kind=reply"
    while url:
        html = client.get(url).text
        seen += re.findall(r"r\d\d@example\.com", html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert sorted(seen) == sorted(f"r{i:02d}@example.com" for i in range(60))


def test_csv_export_follows_the_current_filter(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    seed_bounce(ctx)
    with ctx.db.session() as session:
        make_item(session, SupportKind.REPLY, address="=cmd|calc@example.com")
    support_client(ctx, client, settings)
    answer = client.get("/support/export.csv?kind=hard_bounce")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["編號", "類別", "建立時間"]
    assert len(rows) == 2 and rows[1][1] == "永久退信" and rows[1][4] == "王小明" and rows[1][6] == "04595257"
    assert rows[1][12] == "收件人信箱不存在"
    everything = list(csv.reader(io.StringIO(client.get("/support/export.csv").content.decode("utf-8-sig"))))
    assert len(everything) == 3
    assert any(row[8] == "'=cmd|calc@example.com" for row in everything)  # no spreadsheet formula


def test_actions_need_the_csrf_token(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    item_id = seed_bounce(ctx)
    support_client(ctx, client, settings)
    csrf_of(client)
    answer = client.post(f"/support/items/{item_id}/resolve", data={"back": "/support"})
    assert answer.status_code == 403
    answer = client.post(
        f"/support/items/{item_id}/resolve", data={"csrf_token": "forged", "back": "/support"}
    )
    assert answer.status_code == 403
    with ctx.db.session() as session:
        assert session.get(SupportItem, item_id).resolved_at is None  # type: ignore[union-attr]


def test_assign_note_and_resolve_from_the_item_page(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    item_id = seed_bounce(ctx)
    support_client(ctx, client, settings)
    token = csrf_of(client, f"/support/items/{item_id}")
    back = f"/support/items/{item_id}"
    for path, extra in (("assign", {}), ("note", {"text": "已致電,申請人將提供新信箱"}), ("resolve", {})):
        answer = client.post(
            f"/support/items/{item_id}/{path}",
            data={"csrf_token": token, "back": back, **extra},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"].startswith(back), path
    page = client.get(f"/support/items/{item_id}").text
    assert "已致電,申請人將提供新信箱" in page and "staff-support" in page and "處理完成" in page
    again = client.post(f"/support/items/{item_id}/resolve", data={"csrf_token": token, "back": back})
    assert again.status_code == 409 and "已經處理完成" in again.text
    empty = client.post(f"/support/items/{item_id}/note", data={"csrf_token": token, "text": "  "})
    assert empty.status_code == 422
    evil = client.post(
        f"/support/items/{item_id}/assign",
        data={"csrf_token": token, "back": "https://evil/"},
        follow_redirects=False,
    )
    assert evil.headers["location"].startswith("/support")
    with ctx.db.session() as session:
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "staff:staff-support"))
        )
        assert {"support_item_assigned", "support_note_added", "support_item_resolved"} <= actions
        notes = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "support_note_added")
        )
        assert notes == 1


def test_unknown_ids_get_404_pages(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    support_client(ctx, client, settings)
    token = csrf_of(client)
    assert client.get("/support/items/999999").status_code == 404
    assert client.get("/support/accounts/999999").status_code == 404
    assert client.get("/support/inbound/999999/raw").status_code == 404
    assert client.post("/support/items/999999/resolve", data={"csrf_token": token}).status_code == 404
    assert client.post("/support/mails/999999/resend", data={"csrf_token": token}).status_code == 404
