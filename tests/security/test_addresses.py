"""Issue 13, finding 12: addresses as typed. ``a@ｘ.tw`` (a full-width x) and ``a@例え.jp`` were stored as
typed, so the To header became ``a@=?utf-8?b?…?=.tw`` (no address at all) and the suppression list took
``ｘ.tw``/``x.tw`` and ``例え.jp``/``xn--r8jz45g.jp`` for different mailboxes. Now one normal form
(mailflow.mail.addresses) is stored wherever an address enters, and one key compares them everywhere."""

from __future__ import annotations

import email
from email.policy import default
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts.lookup import account_by_address
from mailflow.context import AppContext
from mailflow.mail import suppression
from mailflow.mail.render import Envelope, render_bytes
from mailflow.models import Account, OutboxMessage, OutboxStatus
from tests.factories import make_applicant, make_item, make_staff, sign_in
from tests.security.test_request_limits import csrf
from tests.web.test_register_api import post as register

SHARED = {"account": "manager01", "name": "王小明", "mobile": "0912345678", "password": "Harbour2024",
          "password_confirm": "Harbour2024"}
TYPED = {"a@ｘ.tw": "a@x.tw", "Lin@例え.JP": "Lin@xn--r8jz45g.jp",
         "ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ": "wang@example.com"}


def sign_up(client: TestClient, address: str, account: str = "manager01") -> Any:
    return client.post("/api/shared-accounts", data={**SHARED, "account": account, "email": address})


def stored(ctx: AppContext, account: str) -> tuple[Account, OutboxMessage]:
    with ctx.db.session() as session:
        row = session.scalars(select(Account).where(Account.account == account)).one()
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.account_id == row.id)).one()
        session.expunge_all()
        return row, mail


def to_header(ctx: AppContext, mail: OutboxMessage) -> tuple[str, str]:
    """(raw To header line, its address) of the mail as it would go on the wire."""
    raw = render_bytes(ctx.settings, Envelope(mail.template, mail.to_address, mail.to_name, mail.message_id,
                                              mail.context or {}))
    line = next(h for h in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if h.lower().startswith(b"to:"))
    parsed = email.message_from_bytes(raw, policy=default)
    return line.decode("ascii"), parsed["To"].addresses[0].addr_spec


@pytest.mark.parametrize(("typed", "normal"), list(TYPED.items()))
def test_a_sign_up_stores_and_mails_the_ascii_form(ctx: AppContext, client: TestClient, typed: str,
                                                  normal: str) -> None:
    assert sign_up(client, typed).status_code == 201
    account, mail = stored(ctx, "manager01")
    assert (account.email, account.email_key, mail.to_address, mail.to_key) == (
        normal, normal.lower(), normal, normal.lower())
    line, addr = to_header(ctx, mail)
    assert addr == normal and normal in line and "=?" not in line.split("<", 1)[-1]


def test_a_registration_stores_the_ascii_form(ctx: AppContext, client: TestClient) -> None:
    assert register(client, email="Lin@例え.jp").status_code == 201
    account, mail = stored(ctx, "example1234")
    assert account.email == mail.to_address == "Lin@xn--r8jz45g.jp"
    assert to_header(ctx, mail)[1] == "Lin@xn--r8jz45g.jp"


@pytest.mark.parametrize(("typed", "says"), [("王小明@example.com", "@前面只能使用英文字母"),
                                             ("=?utf-8?b?5L2g?=@example.com", "Email格式不正確"),
                                             ("=?UTF-8?Q?a?=@x.tw", "Email格式不正確")])
def test_what_cannot_be_delivered_is_refused_in_zh(ctx: AppContext, client: TestClient, typed: str,
                                                  says: str) -> None:
    answer = sign_up(client, typed)
    assert answer.status_code == 422 and says in answer.json()["errors"]["email"]
    form = register(client, email=typed)
    assert form.status_code == 422 and says in form.json()["errors"]["email"]
    with ctx.db.session() as session:
        assert session.scalars(select(Account)).first() is None


def test_the_suppression_list_knows_one_mailbox_by_any_spelling(ctx: AppContext, client: TestClient) -> None:
    with ctx.db.session() as session:
        suppression.suppress(session, "a@x.tw", "hard_bounce")
        suppression.suppress(session, "lin@xn--r8jz45g.jp", "complaint")
    assert sign_up(client, "a@ｘ.tw", "manager01").status_code == 201
    assert sign_up(client, "Lin@例え.jp", "manager02").status_code == 201
    for account in ("manager01", "manager02"):
        assert stored(ctx, account)[1].status == OutboxStatus.SUPPRESSED, account
    with ctx.db.session() as session:
        assert suppression.active_suppression(session, "A@ｘ.TW") is not None
        staff = make_staff(session, "chen", "support")
        session.expunge(staff)
    sign_in(client, ctx.settings, staff)
    lifted = client.post("/support/suppressions/lift", data={"address": "lin@例え.jp",
                                                             "csrf_token": csrf(client, "/support")},
                         follow_redirects=False)
    assert lifted.status_code == 303
    with ctx.db.session() as session:
        assert suppression.active_suppression(session, "lin@xn--r8jz45g.jp") is None


def test_the_support_correction_lookups_and_inbound_matching_use_the_same_form(ctx: AppContext,
                                                                              client: TestClient) -> None:
    with ctx.db.session() as session:
        account, _ = make_applicant(session, email="old@example.com")
        account_id = account.id
        make_item(session, account_id=account_id)
        staff = make_staff(session, "chen", "support")
        session.expunge(staff)
    sign_in(client, ctx.settings, staff)
    answer = client.post(f"/support/accounts/{account_id}/email",
                         data={"email": "Lin@例え.jp", "csrf_token": csrf(client, "/support")},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text[:300]
    with ctx.db.session() as session:
        row = session.get(Account, account_id)
        assert row is not None and (row.email, row.email_key) == ("Lin@xn--r8jz45g.jp", "lin@xn--r8jz45g.jp")
        # a reply from either spelling finds the account (the inbound router's lookup)
        for spelling in ("lin@例え.jp", "LIN@xn--r8jz45g.jp", "ｌｉｎ@例え.jp"):
            found = account_by_address(session, spelling)
            assert found is not None and found.id == account_id, spelling
    # the dashboard's search by address, typed either way
    assert "old@example.com" not in client.get("/support", params={"q": "lin@例え.jp"}).text
    listed = client.get("/support", params={"q": "lin@例え.jp"}).text
    assert "/support/items/" in listed and "wang1234" in listed
    # the same address again is "the same", whichever way it is typed
    again = client.post(f"/support/accounts/{account_id}/email",
                        data={"email": "lin@例え.jp", "csrf_token": csrf(client, "/support")})
    assert again.status_code == 422 and "相同" in again.text
