"""The /verify page's token read has two forms (mailflow.reference): one Core query (preview_token, what the
page runs) and the ORM session's reads (preview_token_orm, the reference). They give the same preview, or
the same refusal, for every kind of link."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mailflow.accounts import tokens
from mailflow.accounts.tokens import TokenError, TokenPreview, issue_token
from mailflow.context import AppContext
from mailflow.models import Account, Binding, BindingStatus, TokenPurpose, VerificationToken
from mailflow.timeutil import now
from tests.factories import add_account, add_general, add_shared


def both(ctx: AppContext, token: str) -> tuple[TokenPreview | int, TokenPreview | int]:
    def run(read: Callable[[], TokenPreview]) -> TokenPreview | int:
        try:
            return read()
        except TokenError as exc:
            return exc.status
    with ctx.db.engine.connect() as connection:
        core = run(lambda: tokens.preview_token(connection, ctx.settings, token))
    with ctx.db.session() as session:
        orm = run(lambda: tokens.preview_token_orm(session, ctx.settings, token))
    return core, orm


def issued(ctx: AppContext, account_id: int, purpose: str = TokenPurpose.VERIFY_EMAIL,
           binding_id: int | None = None) -> tuple[str, int]:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        token, row = issue_token(session, ctx.settings, account, purpose, account.email,
                                 binding_id=binding_id)
        return token, row.id


def age(ctx: AppContext, row_id: int, **values: object) -> None:
    with ctx.db.session() as session:
        session.execute(update(VerificationToken).where(VerificationToken.id == row_id).values(**values))


@pytest.mark.parametrize("state", ["usable", "used", "voided", "expired", "moved", "tampered", "unknown"])
def test_the_core_read_and_the_orm_read_agree(ctx: AppContext, state: str) -> None:
    account_id = add_account(ctx, email="wang@example.com")
    token, row_id = issued(ctx, account_id)
    if state == "used":
        age(ctx, row_id, used_at=now())
    elif state == "voided":
        age(ctx, row_id, voided_at=now())
    elif state == "expired":
        age(ctx, row_id, expires_at=now() - timedelta(minutes=1))
    elif state == "moved":
        with ctx.db.session() as session:
            session.execute(update(Account).where(Account.id == account_id)
                            .values(email="new@example.com", email_key="new@example.com"))
    elif state == "tampered":
        token = ("A" if token[0] != "A" else "B") + token[1:]
    elif state == "unknown":
        token = "not-a-token"
    core, orm = both(ctx, token)
    assert core == orm
    expected = {"usable": TokenPreview, "used": 410, "voided": 410, "expired": 410, "moved": 410,
                "tampered": 400, "unknown": 400}[state]
    assert isinstance(core, TokenPreview) if expected is TokenPreview else core == expected


def test_a_binding_link_names_its_shared_account_both_ways(ctx: AppContext) -> None:
    general_id = add_general(ctx, "harbor01", "04595257")
    shared_id = add_shared(ctx, "manager01")
    with ctx.db.session() as session:
        binding = Binding(shared_account_id=shared_id, general_account_id=general_id,
                          status=BindingStatus.PENDING, requested_as="harbor01")
        session.add(binding)
        session.flush()
        binding_id = binding.id
    token, _ = issued(ctx, general_id, TokenPurpose.BINDING, binding_id)
    core, orm = both(ctx, token)
    assert isinstance(core, TokenPreview) and core == orm
    assert (core.shared_account, core.account) == ("manager01", "harbor01")


@pytest.mark.parametrize("switched", [False, True])
def test_the_switch_sends_the_page_down_one_path_only(
        ctx: AppContext, client: TestClient, monkeypatch: pytest.MonkeyPatch, switched: bool) -> None:
    from mailflow import reference
    from mailflow.web import verify

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the other path was taken")

    monkeypatch.setattr(reference, "ON", switched)
    if switched:
        monkeypatch.setattr(verify, "preview_token", never)
        monkeypatch.setattr(verify, "preview_token_on_loop", never)
    else:
        monkeypatch.setattr(verify, "preview_token_orm", never)
    token, _ = issued(ctx, add_account(ctx, email="wang@example.com"))
    page = client.get(f"/verify/{token}")
    assert page.status_code == 200 and "example1234" in page.text
