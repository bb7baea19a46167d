"""POST /api/v1/notifications and the status routes: to a 帳號's verified address or an address, checked
against the template's meta.toml, idempotent under concurrent repeats, and as visible as any other mail
once it is sent, refused or bounced."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mailflow.accounts.rules import check_field
from mailflow.context import AppContext
from mailflow.inbound import route
from mailflow.inbound.store import store_mail
from mailflow.mail.dispatch import run_dispatch
from mailflow.mail.suppression import suppress
from mailflow.models import Event, Notification, OutboxMessage, SupportItem
from mailflow.support.actions import correct_email
from mailflow.timeutil import now
from tests.factories import make_staff, sign_in, verified_account
from tests.inbound.test_intake_helpers import dsn
from tests.notify.conftest import PASS_ISSUED, Live, issue_key, pass_issued

AT_ONCE = 24


def outbox(ctx: AppContext) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def event_types(ctx: AppContext) -> list[str]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Event.type).order_by(Event.id)))


def test_by_account_it_reaches_the_verified_address_not_an_unverified_new_one(relay: AppContext, sink: Any,
                                                                              live: Live) -> None:
    account_id = verified_account(relay, "example1234", "verified@example.com")
    with relay.db.session() as session:  # customer service types a new address: not verified yet
        correct_email(session, relay.settings, account_id, "new-unverified@example.com", "chen")
    key = issue_key(relay)
    with live.client(key) as api:
        answer = api.post("/api/v1/notifications", json=pass_issued(account="EXAMPLE1234", reference="P-1"))
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert (created["status"], created["reference"]) == ("queued", "P-1")
        assert isinstance(created["id"], int)
        assert api.get(f"/api/v1/notifications/{created['id']}").json()["status"] == "queued"
        run_dispatch(relay)
        status = api.get(f"/api/v1/notifications/{created['id']}").json()
    assert [r.rcpt_tos for r in sink.received] == [["verified@example.com"]]
    mail = sink.received[0]
    assert mail.mail_from.startswith("bounce+")  # the same signed return path as every mail
    assert mail.message["Subject"] == "通行證核發通知"
    text = mail.message.get_body(("plain",)).get_content()
    for value in PASS_ISSUED.values():
        assert value in text
    assert "0809-088-568" in text  # the seed's footer
    assert status["status"] == "sent" and status["to"] == "verified@example.com"
    assert status["template"] == "pass-issued" and status["sent_at"] and status["bounce"] is None
    assert status["created_at"].endswith("+08:00")
    assert event_types(relay)[-1] == "notification.sent"


def test_an_account_without_a_verified_address_is_refused(ctx: AppContext, live: Live) -> None:
    verified_account(ctx, "verified01", "a@example.com")
    with ctx.db.session() as session:
        from mailflow.models import Account

        session.execute(update(Account).where(Account.account_key == "verified01")
                        .values(email_verified_at=None, email_verified_address=None))
    with live.client(issue_key(ctx)) as api:
        unverified = api.post("/api/v1/notifications", json=pass_issued(account="verified01"))
        unknown = api.post("/api/v1/notifications", json=pass_issued(account="nobody99"))
    assert unverified.status_code == 422 and "已驗證" in unverified.json()["errors"]["account"]
    assert unknown.status_code == 422 and "account" in unknown.json()["errors"]
    assert outbox(ctx) == []


def test_by_address_it_is_normalised_and_a_suppressed_one_is_409(ctx: AppContext, live: Live) -> None:
    with ctx.db.session() as session:
        suppress(session, "gone@example.com", "hard_bounce", "550 5.1.1", actor="system")
    with live.client(issue_key(ctx)) as api:
        refused = api.post("/api/v1/notifications", json=pass_issued(email_address=" Gone@Example.COM "))
        bad = api.post("/api/v1/notifications", json=pass_issued(email_address="not-an-address"))
        sent = api.post("/api/v1/notifications", json=pass_issued(email_address=" Chen@Example.com "))
    assert refused.status_code == 409 and "停止寄送" in refused.json()["error"]
    assert bad.status_code == 422 and "email_address" in bad.json()["errors"]
    assert sent.status_code == 201
    rows = outbox(ctx)
    assert [(r.to_address, r.template, r.account_id) for r in rows] == [
        (check_field("email", " Chen@Example.com ")[0], "pass-issued", None)]


def test_the_template_and_its_personalisation_are_checked(ctx: AppContext, live: Live) -> None:
    verified_account(ctx)
    missing = dict(PASS_ISSUED)
    del missing["pass_number"]
    cases: list[tuple[Any, str, str]] = [
        ({**pass_issued(account="example1234"), "personalisation": missing},
         "personalisation", "pass_number"),
        ({**pass_issued(account="example1234"), "personalisation": {**PASS_ISSUED, "colour": "藍"}},
         "personalisation", "colour"),
        ({**pass_issued(account="example1234"), "personalisation": {**PASS_ISSUED, "pass_number": 7}},
         "personalisation.pass_number", "字串"),
        (pass_issued(account="example1234", template="no-such-template"), "template", ""),
        (pass_issued(account="example1234", template="registration-received"), "template", ""),  # not api
        (pass_issued(account="example1234", email_address="a@example.com"), "account", "其中之一"),
        (pass_issued(), "account", "其中之一"),
        (pass_issued(account="example1234", colour="藍"), "colour", ""),
        (pass_issued(account="example1234", reference=12), "reference", ""),
        ([1, 2], "request", ""),
    ]
    with live.client(issue_key(ctx)) as api:
        for body, field, words in cases:
            answer = api.post("/api/v1/notifications", json=body)
            assert answer.status_code == 422, (body, answer.text)
            errors = answer.json()["errors"]
            assert field in errors and words in errors[field], (body, errors)
        not_json = api.post("/api/v1/notifications", content=b"{not json",
                            headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422 and "request" in not_json.json()["errors"]
        both = api.post("/api/v1/notifications",
                        json={**pass_issued(account="example1234"), "personalisation": {"colour": "藍"}})
        message = both.json()["errors"]["personalisation"]
        assert "pass_number" in message and "colour" in message  # missing and extra named at once
        bad_key = api.post("/api/v1/notifications", json=pass_issued(account="example1234"),
                           headers={"Idempotency-Key": "has spaces"})
        assert bad_key.status_code == 422 and "Idempotency-Key" in bad_key.json()["errors"]
    assert outbox(ctx) == []


def test_idempotent_repeats_at_once_make_one_notification(ctx: AppContext, live: Live) -> None:
    verified_account(ctx)
    key = issue_key(ctx, rate=1000)
    body = pass_issued(account="example1234", reference="PASS-2024-1")
    gate = threading.Barrier(AT_ONCE)
    with live.client(key) as api:

        def post(_: int) -> tuple[int, Any, str | None]:
            gate.wait()
            answer = api.post("/api/v1/notifications", json=body, headers={"Idempotency-Key": "issue-42"})
            return answer.status_code, answer.json(), answer.headers.get("idempotent-replayed")

        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(post, range(AT_ONCE)))
        assert {code for code, _, _ in answers} == {201}
        assert len({answer["id"] for _, answer, _ in answers}) == 1
        assert sum(1 for _, _, replayed in answers if replayed is None) == 1
        # The same key with another body is a mistake of the caller: 409, nothing written.
        other = api.post("/api/v1/notifications", json={**body, "reference": "PASS-2024-2"},
                         headers={"Idempotency-Key": "issue-42"})
        assert other.status_code == 409 and other.json()["error"]
        # Key order and spacing are not a different body.
        reordered = api.post("/api/v1/notifications", json=dict(reversed(list(body.items()))),
                             headers={"Idempotency-Key": "issue-42"})
        assert reordered.status_code == 201 and reordered.json()["id"] == answers[0][1]["id"]
        with ctx.db.session() as session:
            assert len(session.scalars(select(Notification.id)).all()) == 1
            assert len(session.scalars(select(OutboxMessage.id)).all()) == 1
            # A day later the key names a new request.
            session.execute(update(Notification).values(created_at=now() - timedelta(hours=25)))
        later = api.post("/api/v1/notifications", json=body, headers={"Idempotency-Key": "issue-42"})
        assert later.status_code == 201 and later.json()["id"] != answers[0][1]["id"]
        # Another API key's same Idempotency-Key is its own.
        with live.client(issue_key(ctx, "second")) as second:
            assert second.post("/api/v1/notifications", json=body,
                               headers={"Idempotency-Key": "issue-42"}).json()["id"] != later.json()["id"]
    assert len(outbox(ctx)) == 3


def test_the_list_filters_by_reference_and_status_and_pages(relay: AppContext, sink: Any, live: Live) -> None:
    verified_account(relay)
    sink.rcpt_replies["refused@example.com"] = "550 5.1.1 no such user"
    with live.client(issue_key(relay, rate=1000)) as api:
        bodies = [pass_issued(account="example1234", reference=f"R{n % 2}") for n in range(5)]
        ids = [api.post("/api/v1/notifications", json=body).json()["id"] for body in bodies]
        failing = api.post("/api/v1/notifications",
                           json=pass_issued(email_address="refused@example.com", reference="R9")).json()["id"]
        run_dispatch(relay)
        assert api.get(f"/api/v1/notifications/{failing}").json()["status"] == "failed"
        assert api.get("/api/v1/notifications/999999").status_code == 404
        assert api.get("/api/v1/notifications/abc").status_code == 404
        walked: list[int] = []
        after = ""
        while True:
            page = api.get("/api/v1/notifications", params={"limit": "2", "after": after}).json()
            walked += [n["id"] for n in page["notifications"]]
            if page["next"] is None:
                break
            after = page["next"]
        assert walked == [*ids, failing]
        r0 = api.get("/api/v1/notifications", params={"reference": "R0"}).json()["notifications"]
        assert [n["id"] for n in r0] == [ids[0], ids[2], ids[4]]
        failed = api.get("/api/v1/notifications", params={"status": "failed"}).json()["notifications"]
        assert [n["id"] for n in failed] == [failing]
        sent = api.get("/api/v1/notifications", params={"status": "sent"}).json()["notifications"]
        assert [n["id"] for n in sent] == ids
        for bad in ({"status": "delivered"}, {"after": "-1"}, {"limit": "0"}, {"limit": "100000"}):
            answer = api.get("/api/v1/notifications", params=bad)
            assert answer.status_code == 422 and answer.json()["errors"], bad
    assert event_types(relay).count("notification.failed") == 1
    assert event_types(relay).count("notification.sent") == 5


def receive(ctx: AppContext, raw: bytes) -> None:
    stored = store_mail(ctx.db, raw, "smtp", "test", "MAILER-DAEMON@mx.example.net", "")
    route.process(ctx, stored.id)


def test_a_hard_bounce_shows_on_its_status_and_on_support(relay: AppContext, sink: Any, live: Live,
                                                          client: TestClient) -> None:
    verified_account(relay, "example1234", "wang@example.com")
    with live.client(issue_key(relay)) as api:
        created = api.post("/api/v1/notifications", json=pass_issued(account="example1234")).json()
        delayed = api.post("/api/v1/notifications", json=pass_issued(email_address="slow@example.com")).json()
        run_dispatch(relay)
        with relay.db.session() as session:
            rows = session.execute(select(Notification.id, OutboxMessage)
                                   .join(OutboxMessage, OutboxMessage.id == Notification.outbox_id))
            mails = {n_id: mail for n_id, mail in rows}
        receive(relay, dsn(relay.settings, mails[delayed["id"]], status="4.4.7", action="delayed"))
        receive(relay, dsn(relay.settings, mails[created["id"]]))
        bounced = api.get(f"/api/v1/notifications/{created['id']}").json()
        waiting = api.get(f"/api/v1/notifications/{delayed['id']}").json()
        listed = api.get("/api/v1/notifications", params={"status": "bounced"}).json()["notifications"]
        again = api.post("/api/v1/notifications", json=pass_issued(account="example1234"))
    assert bounced["status"] == "bounced"
    assert bounced["bounce"] == {"hard": True, "reason": "userunknown", "status": "5.1.1"}
    assert waiting["status"] == "delivery-delayed" and waiting["bounce"] is None
    assert [n["id"] for n in listed] == [created["id"]]
    assert again.status_code == 409  # the same consequence as any bounce: the address is suppressed
    assert event_types(relay).count("notification.bounced") == 1
    with relay.db.session() as session:
        item = session.scalars(select(SupportItem)).one()
        assert (item.kind, item.address, item.outbox_id) == ("hard_bounce", "wang@example.com",
                                                             mails[created["id"]].id)
        staff = make_staff(session)
    sign_in(client, relay.settings, staff)
    page = client.get("/support")
    assert page.status_code == 200
    assert "wang@example.com" in page.text and "通行證核發通知" in page.text and "example1234" in page.text
