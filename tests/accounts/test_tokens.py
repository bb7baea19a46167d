"""Verification tokens: signed, address-bound, stored as a hash, single use, voided by newer ones,
expiring."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.accounts import tokens
from mailflow.accounts.tokens import TokenError, consume, issue_token, load_token, void_tokens_for_address
from mailflow.config import Settings, load_settings
from mailflow.context import AppContext
from mailflow.models import Account, AccountStatus, TokenPurpose, VerificationToken
from mailflow.passwords import hash_password
from mailflow.timeutil import now


def add_account(ctx: AppContext, account: str = "example1234", email: str = "Wang@Example.com") -> int:
    with ctx.db.session() as session:
        row = Account(account=account, account_key=account.lower(), name="王小明", mobile="0912345678",
                      email=email, email_key=email.lower(), password_hash=hash_password("Secret-pass-1"),
                      status=AccountStatus.APPROVED, approved_at=now())
        session.add(row)
        session.flush()
        return row.id


def issue(ctx: AppContext, account_id: int, address: str = "Wang@Example.com",
          purpose: str = TokenPurpose.VERIFY_EMAIL) -> tuple[str, int]:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        token, row = issue_token(session, ctx.settings, account, purpose, address)
        return token, row.id


def load_status(ctx: AppContext, token: str) -> int | str:
    with ctx.db.session() as session:
        try:
            load_token(session, ctx.settings, token)
        except TokenError as exc:
            return exc.status
        return "ok"


def test_a_token_carries_its_binding_and_is_stored_only_as_a_hash(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    token, row_id = issue(ctx, account_id)
    body = tokens.read_signed(ctx.settings, token)
    assert (body["a"], body["p"], body["e"]) == (account_id, "verify-email", "Wang@Example.com")
    with ctx.db.session() as session:
        row = session.get(VerificationToken, row_id)
        assert row is not None
        assert token.encode() not in bytes(row.token_hash) and len(row.token_hash) == 32
        assert row.expires_at - row.issued_at == timedelta(hours=72)
        loaded = load_token(session, ctx.settings, token)
        assert loaded.id == row_id


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: t.split(".")[0],  # no signature
    lambda t: "",
    lambda t: "not-a-token",
    lambda t: t + ".x",
    lambda t: "!!!." + t.split(".")[1],
])
def test_a_tampered_or_malformed_token_is_400(ctx: AppContext, mangle) -> None:
    token, _ = issue(ctx, add_account(ctx))
    assert load_status(ctx, mangle(token)) == 400


def test_changing_the_bound_address_in_the_payload_breaks_the_signature(ctx: AppContext) -> None:
    token, _ = issue(ctx, add_account(ctx))
    payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["e"] = "forwarded@example.org"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert load_status(ctx, f"{forged}.{sig}") == 400


def test_a_token_signed_with_another_key_or_for_another_purpose_is_400(ctx: AppContext, db_url: str) -> None:
    token, _ = issue(ctx, add_account(ctx))
    other: Settings = load_settings(None, {"MAILFLOW_DATABASE__URL": db_url,
                                           "MAILFLOW_SECURITY__SECRET_KEY": "another-secret-key-0123456789"})
    with ctx.db.session() as session, pytest.raises(TokenError) as caught:
        load_token(session, other, token)
    assert caught.value.status == 400
    payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["p"] = "binding"
    swapped = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert load_status(ctx, f"{swapped}.{sig}") == 400


def test_a_validly_signed_token_unknown_to_the_database_is_400(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    token = tokens.sign_token(ctx.settings, account_id, "verify-email", "Wang@Example.com", 0, "never-issued")
    assert load_status(ctx, token) == 400


def test_used_expired_and_voided_tokens_are_410(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    used, used_id = issue(ctx, account_id)
    with ctx.db.session() as session:
        row = load_token(session, ctx.settings, used)
        assert consume(session, row) is True
        assert consume(session, row) is False  # the second submit of a double click loses
    assert load_status(ctx, used) == 410

    expired, expired_id = issue(ctx, account_id)
    with ctx.db.session() as session:
        stale = session.get(VerificationToken, expired_id)
        assert stale is not None
        stale.expires_at = now() - timedelta(seconds=1)
    assert load_status(ctx, expired) == 410

    older, _ = issue(ctx, account_id)
    newer, _ = issue(ctx, account_id)
    assert load_status(ctx, older) == 410
    assert load_status(ctx, newer) == "ok"


def test_a_new_token_voids_only_the_same_purpose_of_the_same_account(ctx: AppContext) -> None:
    first = add_account(ctx)
    second = add_account(ctx, "other5678", "other@example.com")
    verify_token, _ = issue(ctx, first)
    other_token, _ = issue(ctx, second, "other@example.com")
    binding_token, _ = issue(ctx, first, purpose=TokenPurpose.BINDING)
    issue(ctx, first)
    assert load_status(ctx, verify_token) == 410
    assert load_status(ctx, other_token) == "ok"
    assert load_status(ctx, binding_token) == "ok"


def test_void_tokens_for_address_matches_case_insensitively(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    token, _ = issue(ctx, account_id)
    with ctx.db.session() as session:
        assert void_tokens_for_address(session, account_id, "wang@EXAMPLE.com") == 1
    assert load_status(ctx, token) == 410
    with ctx.db.session() as session:
        assert session.scalar(select(VerificationToken.voided_at)) is not None
