"""QA audit fixes: auto-replies reach customer service at low priority; a mail to a suppressed address is
never announced as queued (support resend, email correction, the applicant's resend form and API); a
forwarded mail's bounce shows the address that actually failed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.models import BounceRecipient, InboundMessage, OutboxMessage, SupportItem, SupportNote
from mailflow.support import items
from mailflow.timeutil import now
from tests.factories import (
    PASSWORD,
    csrf_of,
    make_applicant,
    make_bounce_item,
    make_mail,
    make_staff,
    sign_in,
)


def signed_in(ctx: AppContext, client: TestClient, settings: Settings) -> None:
    with ctx.db.session() as session:
        staff = make_staff(session)
    sign_in(client, settings, staff)


def autoreply_row(ctx: AppContext, n: int, subject: str, account_id: int | None,
                  sender: str = "wang@example.com") -> int:
    with ctx.db.session() as session:
        row = InboundMessage(source="smtp", header_message_id=f"<ar{n}@example.com>", sha256=f"{n:064d}",
                             size=10, raw=b"Subject: x\r\n\r\nx", kind="autoreply", status="processed",
                             account_id=account_id, from_address=sender, subject=subject,
                             received_at=now())
        session.add(row)
        session.flush()
        items.note_autoreply(session, row, None)
        return row.id


# --- 1. auto-replies -------------------------------------------------------------------------


def test_autoreplies_make_one_low_priority_item_per_account(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        make_bounce_item(session, acc, app, make_mail(session, acc))
    autoreply_row(ctx, 1, "休假中:我將於 7/1 回來", acc.id)
    autoreply_row(ctx, 2, "Out of office again", None)  # found by the sender's address
    autoreply_row(ctx, 3, "from a stranger", None, sender="stranger@example.net")
    with ctx.db.session() as session:
        found = list(session.scalars(select(SupportItem).where(SupportItem.kind == items.AUTOREPLY)))
        assert [i.account_id for i in found] == [acc.id]
        assert found[0].summary.endswith("休假中:我將於 7/1 回來")
        notes = session.scalars(select(SupportNote.text).where(SupportNote.item_id == found[0].id)).all()
        assert len(notes) == 1 and "Out of office again" in notes[0]
        item_id = found[0].id
    signed_in(ctx, client, settings)
    dashboard = client.get("/support").text
    assert '<option value="autoreply">自動回覆(低優先)</option>' in dashboard
    # Low priority: listed after the bounce.
    assert dashboard.index("永久退信") < dashboard.index(f"/support/items/{item_id}")
    filtered = client.get("/support?kind=autoreply")
    assert filtered.status_code == 200 and f"/support/items/{item_id}" in filtered.text
    assert "不明的項目類別" not in filtered.text
    account_page = client.get(f"/support/accounts/{acc.id}").text
    assert "休假中:我將於 7/1 回來" in account_page and "Out of office again" in account_page
    assert f"/support/items/{item_id}" in account_page
    item_page = client.get(f"/support/items/{item_id}").text
    assert "Out of office again" in item_page and "連續多封可能表示信箱無人收信" in item_page
    csv = client.get("/support/export.csv?kind=autoreply").text
    assert "自動回覆(低優先)" in csv and "wang1234" in csv


# --- 2. suppressed addresses -------------------------------------------------------------------


def test_support_resend_to_a_suppressed_address_says_it_will_not_be_sent(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        mail = make_mail(session, acc, "registration-received")
        suppression.suppress(session, acc.email, "userunknown")
    signed_in(ctx, client, settings)
    token = csrf_of(client, f"/support/accounts/{acc.id}")
    answer = client.post(f"/support/mails/{mail.id}/resend",
                         data={"csrf_token": token, "back": f"/support/accounts/{acc.id}"})
    assert answer.status_code == 409
    assert "停止寄送名單" in answer.text and "不會寄出" in answer.text and "解除停止寄送" in answer.text
    assert "已重新排入寄送佇列" not in answer.text
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1  # no dead copy queued


def test_correcting_to_a_suppressed_address_says_so(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        suppression.suppress(session, "blocked@example.com", "userunknown")
    signed_in(ctx, client, settings)
    back = f"/support/accounts/{acc.id}"
    answer = client.post(f"/support/accounts/{acc.id}/email",
                         data={"csrf_token": csrf_of(client, back), "back": back,
                               "email": "blocked@example.com"})
    assert answer.status_code == 200
    assert "新的地址在停止寄送名單中,郵件不會寄出" in answer.text
    assert "待寄的郵件已重新排入寄送佇列" not in answer.text
    assert "解除停止寄送" in answer.text


def test_the_applicants_resend_refuses_a_suppressed_address(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        acc, _ = make_applicant(session)
        suppression.suppress(session, acc.email, "userunknown")
    api = client.post("/api/verification-mails", json={"account": "wang1234", "password": PASSWORD})
    assert api.status_code == 409
    assert "無法寄信" in api.json()["error"] and "客服" in api.json()["error"]
    form = client.post("/verify/resend", data={"account": "wang1234", "password": PASSWORD,
                                               "csrf_token": csrf_of(client, "/verify/resend")})
    assert form.status_code == 409 and "無法寄信" in form.text and "0809-088-568" in form.text
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0
        suppression.lift(session, acc.email, "staff:chen")
    again = client.post("/api/verification-mails",
                        json={"account": "wang1234", "password": PASSWORD})
    assert again.status_code == 202 and again.json()["status"] == "queued"


# --- 3. the address a forwarded mail bounced at --------------------------------------------------


def test_a_forwarded_bounce_shows_the_address_that_failed(
    ctx: AppContext, client: TestClient, settings: Settings
) -> None:
    with ctx.db.session() as session:
        acc, app = make_applicant(session)
        forwarded = make_bounce_item(session, acc, app, make_mail(session, acc))
        recipient = session.scalars(select(BounceRecipient)
                                    .where(BounceRecipient.inbound_id == forwarded.inbound_id)).one()
        recipient.address = "Wang.Forward@Elsewhere.example"
        acc2, app2 = make_applicant(session, account="lin12345", email="lin@example.com", ubn="22099131")
        plain = make_bounce_item(session, acc2, app2, make_mail(session, acc2))
    signed_in(ctx, client, settings)
    page = client.get(f"/support/items/{forwarded.id}").text
    assert "實際退信的地址" in page and "Wang.Forward@Elsewhere.example" in page
    assert "wang@example.com" in page
    assert "實際退信的地址" not in client.get(f"/support/items/{plain.id}").text
