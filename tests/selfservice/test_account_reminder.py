"""忘記帳號 (issue 14): the verified address gets the list of its 帳號 and companies; every other address gets
the same answer and nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailflow.accounts.selfservice import REMINDER_ACCEPTED
from mailflow.context import AppContext
from tests.selfservice.conftest import csrf, holder, mails_to, outbox, shared_holder
from tests.test_story import Mailbox, text_of

SUBJECT = "帳號查詢通知"


def ask(client: TestClient, email: str) -> None:
    answer = client.post("/api/account-reminders", json={"email": email})
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})


def test_the_verified_address_gets_its_accounts_and_companies(ctx: AppContext, client: TestClient,
                                                              mailbox: Mailbox) -> None:
    holder(ctx, "wang1234", "wang@example.com")
    holder(ctx, "wang5678", "wang@example.com", ubn="12345675", company="高雄港埠物流股份有限公司")
    shared_holder(ctx, "manager01", "wang@example.com")
    holder(ctx, "lee00001", "wang@example.com", ubn="22099131", verified=False)  # not its verified address
    holder(ctx, "other999", "other@example.com", ubn="53212539")
    ask(client, "WANG@example.com")
    [mail] = mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)
    text = text_of(mail)
    assert "若不是您本人查詢,請忽略此信" in text.split("帳號:")[0]
    for expected in ("wang1234(一般帳號)", "臺灣港務股份有限公司基隆分公司", "wang5678(一般帳號)",
                     "高雄港埠物流股份有限公司", "manager01(共用帳號)", "/password/forgot"):
        assert expected in text
    assert "lee00001" not in text and "other999" not in text
    assert "Harbour" not in text  # no password, nothing else


@pytest.mark.parametrize("address", ["nobody@example.com", "lee@example.com", "not an address"])
def test_any_other_address_gets_the_same_answer_and_nothing(ctx: AppContext, client: TestClient,
                                                            mailbox: Mailbox, address: str) -> None:
    holder(ctx, "lee00001", "lee@example.com", verified=False)
    ask(client, address)
    assert mailbox.deliver() == [] and outbox(ctx, "account-reminder") == []


def test_the_form_needs_its_token_and_answers_alike(ctx: AppContext, client: TestClient,
                                                    mailbox: Mailbox) -> None:
    holder(ctx)
    assert "忘記帳號" in client.get("/account").text
    assert client.post("/account/forgot", data={"email": "wang@example.com"}).status_code == 403
    token = csrf(client, "/account/forgot")
    pages = [client.post("/account/forgot", data={"email": typed, "csrf_token": token})
             for typed in ("wang@example.com", "nobody@example.com")]
    assert [p.status_code for p in pages] == [202, 202] and pages[0].text == pages[1].text
    assert REMINDER_ACCEPTED in pages[0].text
    assert len(mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)) == 1
    assert client.post("/api/account-reminders", json={}).status_code == 422


def test_support_sends_the_reminder_again_as_the_list_is_now(ctx: AppContext, client: TestClient,
                                                             mailbox: Mailbox) -> None:
    from mailflow.support.actions import resend_mail

    holder(ctx, "wang1234", "wang@example.com")
    ask(client, "wang@example.com")
    mailbox.deliver()
    holder(ctx, "wang5678", "wang@example.com", ubn="12345675", company="高雄港埠物流股份有限公司")
    [sent] = outbox(ctx, "account-reminder")
    with ctx.db.session() as session:
        copy = resend_mail(session, ctx.settings, sent.id, "huang")
        assert copy.template == "account-reminder" and copy.id != sent.id
    [again] = mails_to(mailbox.deliver(), "wang@example.com", SUBJECT)
    assert "wang1234" in text_of(again) and "wang5678" in text_of(again)
