"""POST /api/shared-accounts/bindings names the general account by its account name or by the number
POST /api/applications answered (its 201 ``id``), as a JSON number or a string of digits.

The shared account registers first, so the company's account row and its application have different
ids: the number must reach the company that registered under it, not the account row of that number."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.accounts import review, shared
from mailflow.context import AppContext
from mailflow.models import Account, Binding
from tests.web.test_shared_web import (
    SHARED_PASSWORD,
    link_token,
    login,
    open_link,
    outbox,
    register_verified_shared,
    second_client,
)

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
COMPANY_PASSWORD = "Harbour2024"


def company(account: str, ubn: str) -> dict[str, str]:
    return {"account": account, "name": "王小明", "mobile": "0912345678", "email": f"{account}@example.com",
            "password": COMPANY_PASSWORD, "password_confirm": COMPANY_PASSWORD, "ubn": ubn,
            "company_phone": "02-12345678#12345", "company_name": f"{account}股份有限公司",
            "company_address": "804004高雄市鼓山區蓬萊路10號", "company_owner": "陳大文"}


def registered_and_verified(ctx: AppContext, client: TestClient, account: str, ubn: str) -> int:
    """Register through the API, approve, verify through the mailed link: the 201's id."""
    created = client.post("/api/applications", data=company(account, ubn),
                          files={"document": ("登記表.pdf", PDF, "application/pdf")})
    assert created.status_code == 201, created.text
    number = int(created.json()["id"])
    with ctx.db.session() as session:
        review.approve(session, ctx.settings, number, "staff:lin")
    (mail,) = outbox(ctx, "account-approved", f"{account}@example.com")
    assert open_link(second_client(client), link_token(mail), COMPANY_PASSWORD).status_code == 200
    return number


def account_id_of(ctx: AppContext, account: str) -> int:
    with ctx.db.session() as session:
        return int(session.scalars(select(Account.id).where(Account.account_key == account)).one())


def ask(client: TestClient, reference: Any) -> Any:
    return client.post("/api/shared-accounts/bindings", json={"general_account": reference})


def test_the_number_from_registration_binds_that_company_as_int_or_digits(
    ctx: AppContext, client: TestClient
) -> None:
    register_verified_shared(ctx, client)  # account row 1
    first = registered_and_verified(ctx, client, "harbor01", "04595257")
    second = registered_and_verified(ctx, client, "harbor02", "12345675")
    assert account_id_of(ctx, "harbor01") != first  # the ids differ: the test tells them apart
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200

    by_int = ask(client, first)
    assert by_int.status_code == 202, by_int.text
    # Until the company confirms, the answer names it only as typed: the number, never its 帳號.
    assert by_int.json()["general_account"] == str(first) and "harbor01" not in by_int.text
    by_digits = ask(client, f" {second} ")
    assert by_digits.status_code == 202 and by_digits.json()["general_account"] == str(second)
    assert len(outbox(ctx, "binding-request", "harbor01@example.com")) == 1
    assert len(outbox(ctx, "binding-request", "harbor02@example.com")) == 1
    with ctx.db.session() as session:
        bound = {b.general_account_id for b in session.scalars(select(Binding))}
    assert bound == {account_id_of(ctx, "harbor01"), account_id_of(ctx, "harbor02")}

    again = ask(client, str(first))  # the same company by its number as text: the pending request
    assert again.status_code == 409 and "等待" in again.json()["error"]


def test_the_account_name_still_binds_and_bad_numbers_are_409_or_422(
    ctx: AppContext, client: TestClient
) -> None:
    register_verified_shared(ctx, client)
    number = registered_and_verified(ctx, client, "harbor01", "04595257")
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    for missing in (number + 1, "999", 0, -1, 2**40, "１"):  # fullwidth digits are not a number
        answer = ask(client, missing)
        assert answer.status_code == 409 and answer.json()["error"] == shared.NOT_BINDABLE, missing
    for malformed in (True, 1.5, None, [number], ""):
        assert ask(client, malformed).status_code == 422, malformed
    assert ask(client, "HARBOR01").status_code == 202
    assert outbox(ctx, "binding-request", "harbor01@example.com")


def test_a_rejected_registration_cannot_be_bound_by_its_number(ctx: AppContext, client: TestClient) -> None:
    register_verified_shared(ctx, client)
    created = client.post("/api/applications", data=company("harbor09", "04595257"),
                          files={"document": ("登記表.pdf", PDF, "application/pdf")})
    number = int(created.json()["id"])
    with ctx.db.session() as session:
        reasons = review.resolve_reasons(["doc-outdated"], [])
        review.reject(session, ctx.settings, number, "staff:lin", reasons)
    assert login(client, "manager01", SHARED_PASSWORD).status_code == 200
    assert ask(client, number).json() == {"error": shared.NOT_BINDABLE}
