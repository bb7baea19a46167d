"""變更密碼 on /account (issue 14): the current password, the registration's rules for the new one; this
session goes on, every other one ends, and the address is told."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mailflow.context import AppContext
from tests.selfservice.conftest import NEW_PASSWORD, PASSWORD, csrf, holder, log_in, mails_to, signed_in
from tests.test_story import Mailbox, text_of


def change(client: TestClient, current: str = PASSWORD, new: str = NEW_PASSWORD) -> int:
    return client.post("/api/account/password",
                       json={"current_password": current, "new_password": new}).status_code


def test_the_password_changes_and_only_this_session_stays(ctx: AppContext, client: TestClient,
                                                         mailbox: Mailbox) -> None:
    holder(ctx)
    other_device = TestClient(client.app)
    assert log_in(other_device) == 200 and log_in(client) == 200
    assert change(client) == 200
    assert signed_in(client) and not signed_in(other_device)
    [mail] = mails_to(mailbox.deliver(), "wang@example.com", "密碼變更通知")
    first = text_of(mail).split("http")[0]
    assert "在「我的帳號」頁面變更" in first and "若這不是您本人所做的變更" in first
    assert log_in(other_device) == 401 and log_in(other_device, password=NEW_PASSWORD) == 200


def test_a_wrong_current_or_weak_new_password_changes_nothing(ctx: AppContext, client: TestClient,
                                                              mailbox: Mailbox) -> None:
    holder(ctx)
    assert change(client) == 401  # not signed in
    assert log_in(client) == 200
    assert change(client, current="Wrong-pass-2024") == 403
    weak = client.post("/api/account/password", json={"current_password": PASSWORD, "new_password": "abc"})
    assert weak.status_code == 422 and "new_password" in weak.json()["errors"]
    containing = client.post("/api/account/password",
                             json={"current_password": PASSWORD, "new_password": "Wang1234abcd"})
    assert containing.status_code == 422 and "不可包含帳號" in containing.json()["errors"]["new_password"]
    assert mailbox.deliver() == [] and signed_in(client)
    assert log_in(client) == 200


def test_wrong_current_passwords_count_like_failed_logins(ctx: AppContext, client: TestClient) -> None:
    holder(ctx)
    assert log_in(client) == 200
    answers = [change(client, current=f"Wrong-pass-{i}") for i in range(11)]
    assert answers[:10] == [403] * 10 and answers[10] == 429
    assert change(client) == 429  # the right one waits too: no guessing past the limit


def test_the_account_page_form(ctx: AppContext, client: TestClient, mailbox: Mailbox) -> None:
    holder(ctx)
    assert log_in(client) == 200
    token = csrf(client, "/account")
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    assert client.post("/account/password", data=form).status_code == 403
    mismatch = client.post("/account/password",
                           data={**form, "new_password_confirm": "x", "csrf_token": token})
    assert mismatch.status_code == 422 and "兩次輸入的密碼不一致" in mismatch.text
    done = client.post("/account/password", data={**form, "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    assert "密碼已變更" in client.get("/account?done=password").text  # still signed in here
    assert len(mails_to(mailbox.deliver(), "wang@example.com", "密碼變更通知")) == 1
