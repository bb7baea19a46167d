"""Reviewing an applicant whose address is on the suppression list (issue 15 item 10): the page warns
before the decision, asks before 核准 and 退件 (they cannot be undone), and afterwards says that nothing
could be sent and that customer service has an item to phone the applicant. The trail reads in zh-TW."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import OutboxMessage, OutboxStatus, SupportItem, SupportKind
from tests.factories import add_staff, add_submitted, csrf_of, staff_login

ADDRESS = "example1234@example.com"


def reviewer(ctx: AppContext, client: TestClient) -> None:
    add_staff(ctx, "huang.reviewer")
    assert staff_login(client, "huang.reviewer").status_code == 303


def suppress_applicant(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        suppression.suppress(session, ADDRESS, "hard_bounce", "550 5.1.1 user unknown")


def test_the_page_asks_before_either_decision(ctx: AppContext, client: TestClient) -> None:
    application_id = add_submitted(ctx)
    reviewer(ctx, client)
    page = client.get(f"/review/applications/{application_id}").text
    form_tags = r'action="/review/applications/\d+/(approve|reject)"\s+data-confirm-submit="([^"]+)"'
    asks = dict(re.findall(form_tags, page))
    assert set(asks) == {"approve", "reject"} and all("無法復原" in q for q in asks.values())
    assert "停止寄送名單" not in page  # no warning for an address that can be mailed
    assert '<script src="/static/confirm.js"' in page


@pytest.mark.parametrize(("decision", "form", "done"), [
    ("approve", {"note": ""}, "approved-unsent"),
    ("reject", {"codes": "doc-unreadable"}, "rejected-unsent"),
])
def test_a_suppressed_address_is_warned_before_and_after(ctx: AppContext, client: TestClient, decision: str,
                                                        form: dict[str, str], done: str) -> None:
    application_id = add_submitted(ctx)
    suppress_applicant(ctx)
    reviewer(ctx, client)
    path = f"/review/applications/{application_id}"
    before = client.get(path).text
    assert "在停止寄送名單中" in before and "永久退信" in before and ADDRESS in before
    assert "通知不會寄出" in before  # the confirmation repeats it
    answer = client.post(f"{path}/{decision}", data={**form, "csrf_token": csrf_of(client, path)},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith(f"?done={done}")
    after = client.get(answer.headers["location"]).text
    assert "通知信沒有寄出" in after and "客服建立待處理項目" in after
    assert 'class="notice err" role="status"' in after  # shown as a warning, not as a success
    with ctx.db.session() as session:
        mails = session.scalars(select(OutboxMessage).where(OutboxMessage.to_key == ADDRESS)).all()
        assert mails and {m.status for m in mails} == {OutboxStatus.SUPPRESSED}
        (item,) = session.scalars(select(SupportItem)
                                  .where(SupportItem.kind == SupportKind.MAIL_FAILED)).all()
        assert item.application_id == application_id and item.outbox_id == mails[0].id
        assert "沒有寄出" in (item.summary or "")


def test_an_address_that_can_be_mailed_opens_no_item(ctx: AppContext, client: TestClient) -> None:
    application_id = add_submitted(ctx)
    reviewer(ctx, client)
    path = f"/review/applications/{application_id}"
    answer = client.post(f"{path}/approve", data={"csrf_token": csrf_of(client, path)},
                         follow_redirects=False)
    assert answer.headers["location"].endswith("?done=approved")
    page = client.get(answer.headers["location"]).text
    assert "已核准" in page and "沒有寄出" not in page
    with ctx.db.session() as session:
        assert session.scalars(select(SupportItem)).all() == []
    # the trail reads as people and deeds, with the codes kept in tooltips
    assert "工作人員 huang.reviewer" in page and "核准申請" in page
    assert 'title="application.approved"' in page and 'title="staff:huang.reviewer"' in page
