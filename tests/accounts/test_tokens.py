"""Verification tokens: short and opaque (the binding to account, purpose and address is server-side),
stored as a hash, single use, voided by newer ones, expiring; the long signed links issued before keep
working until they expire."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailflow.accounts import tokens
from mailflow.accounts.tokens import TokenError, consume, issue_token, load_token, void_tokens_for_address
from mailflow.config import Settings, load_settings
from mailflow.context import AppContext
from mailflow.models import Account, TokenPurpose, VerificationToken
from mailflow.timeutil import now
from tests.factories import add_account

ADDRESS = "Wang@Example.com"


def issue(ctx: AppContext, account_id: int, address: str = "Wang@Example.com",
          purpose: str = TokenPurpose.VERIFY_EMAIL) -> tuple[str, int]:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        token, row = issue_token(session, ctx.settings, account, purpose, address)
        return token, row.id


def issue_legacy(ctx: AppContext, account_id: int, address: str = "Wang@Example.com",
                 purpose: str = TokenPurpose.VERIFY_EMAIL) -> tuple[str, int]:
    """A link in the long signed format mailed before issue 17 item 5, with its row."""
    with ctx.db.session() as session:
        issued = now().replace(microsecond=0)
        jti = secrets.token_urlsafe(18)  # as the old issue_token made them
        token = tokens.sign_token(ctx.settings, account_id, purpose, address, int(issued.timestamp()), jti)
        row = VerificationToken(jti=jti, token_hash=tokens.token_hash(token), account_id=account_id,
                                purpose=purpose, address=address, issued_at=issued,
                                expires_at=issued + timedelta(hours=72))
        session.add(row)
        session.flush()
        return token, row.id


def load_status(ctx: AppContext, token: str) -> int | str:
    with ctx.db.session() as session:
        try:
            load_token(session, ctx.settings, token)
        except TokenError as exc:
            return exc.status
        return "ok"


def test_a_token_is_short_opaque_bound_server_side_and_stored_only_as_a_hash(ctx: AppContext) -> None:
    account_id = add_account(ctx, email=ADDRESS)
    token, row_id = issue(ctx, account_id)
    assert len(token) < 60 and len(token) == tokens.ID_CHARS + 1 + tokens.MAC_CHARS
    # Nothing readable in it: not the address, not the account, in any encoding.
    decoded = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    for secret in (b"Wang", b"wang", b"example", str(account_id).encode() + b",", b"verify"):
        assert secret not in decoded and secret.decode() not in token
    with ctx.db.session() as session:
        row = session.get(VerificationToken, row_id)
        assert row is not None
        assert (row.account_id, row.purpose, row.address) == (account_id, "verify-email", "Wang@Example.com")
        assert token.encode() not in bytes(row.token_hash) and len(row.token_hash) == 32
        assert row.expires_at - row.issued_at == timedelta(hours=72)
        loaded = load_token(session, ctx.settings, token)
        assert loaded.id == row_id


MANGLES = [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: ("B" if t[0] == "A" else "A") + t[1:],  # id changed
    lambda t: t.split(".")[0],  # no signature
    lambda t: "",
    lambda t: "not-a-token",
    lambda t: t + ".x",
    lambda t: "!!!." + t.split(".")[1],
]


@pytest.mark.parametrize("mangle", MANGLES)
def test_a_tampered_or_malformed_token_is_400(ctx: AppContext, mangle) -> None:
    token, _ = issue(ctx, add_account(ctx, email=ADDRESS))
    assert load_status(ctx, token) == "ok"
    assert load_status(ctx, mangle(token)) == 400


@pytest.mark.parametrize("mangle", MANGLES)
def test_a_tampered_legacy_token_is_400(ctx: AppContext, mangle) -> None:
    token, _ = issue_legacy(ctx, add_account(ctx, email=ADDRESS))
    assert load_status(ctx, token) == "ok"
    assert load_status(ctx, mangle(token)) == 400


def test_an_opaque_token_with_a_valid_mac_but_no_row_is_400(ctx: AppContext) -> None:
    forged, _ = tokens.make_token(ctx.settings)  # made with our key, never stored
    assert load_status(ctx, forged) == 400


def test_a_token_of_another_purpose_than_asked_is_400(ctx: AppContext) -> None:
    token, _ = issue(ctx, add_account(ctx, email=ADDRESS), purpose=TokenPurpose.BINDING)
    with ctx.db.session() as session, pytest.raises(TokenError) as caught:
        load_token(session, ctx.settings, token, purposes=(TokenPurpose.VERIFY_EMAIL,))
    assert caught.value.status == 400
    with ctx.db.session() as session:
        assert load_token(session, ctx.settings, token, purposes=(TokenPurpose.BINDING,)).purpose == "binding"


def test_a_legacy_link_still_loads_until_it_expires(ctx: AppContext) -> None:
    account_id = add_account(ctx, email=ADDRESS)
    token, row_id = issue_legacy(ctx, account_id)
    assert len(token) > 100 and load_status(ctx, token) == "ok"
    with ctx.db.session() as session:
        row = session.get(VerificationToken, row_id)
        assert row is not None
        row.expires_at = now() - timedelta(seconds=1)
    assert load_status(ctx, token) == 410


def test_changing_the_bound_address_in_a_legacy_payload_breaks_the_signature(ctx: AppContext) -> None:
    token, _ = issue_legacy(ctx, add_account(ctx, email=ADDRESS))
    payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["e"] = "forwarded@example.org"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert load_status(ctx, f"{forged}.{sig}") == 400


def test_a_token_signed_with_another_key_or_for_another_purpose_is_400(ctx: AppContext, db_url: str) -> None:
    account_id = add_account(ctx, email=ADDRESS)
    other: Settings = load_settings(None, {"MAILFLOW_DATABASE__URL": db_url,
                                           "MAILFLOW_SECURITY__SECRET_KEY": "another-secret-key-0123456789"})
    for token, _ in (issue(ctx, account_id), issue_legacy(ctx, account_id, purpose=TokenPurpose.BINDING)):
        with ctx.db.session() as session, pytest.raises(TokenError) as caught:
            load_token(session, other, token)
        assert caught.value.status == 400
    token, _ = issue_legacy(ctx, add_account(ctx, "other5678", "other@example.com"), "other@example.com")
    payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["p"] = "binding"
    swapped = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert load_status(ctx, f"{swapped}.{sig}") == 400


def test_a_validly_signed_token_unknown_to_the_database_is_400(ctx: AppContext) -> None:
    account_id = add_account(ctx, email=ADDRESS)
    token = tokens.sign_token(ctx.settings, account_id, "verify-email", "Wang@Example.com", 0, "never-issued")
    assert load_status(ctx, token) == 400


def test_used_expired_and_voided_tokens_are_410(ctx: AppContext) -> None:
    account_id = add_account(ctx, email=ADDRESS)
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
    first = add_account(ctx, email=ADDRESS)
    second = add_account(ctx, "other5678", "other@example.com")
    verify_token, _ = issue(ctx, first)
    other_token, _ = issue(ctx, second, "other@example.com")
    binding_token, _ = issue(ctx, first, purpose=TokenPurpose.BINDING)
    issue(ctx, first)
    assert load_status(ctx, verify_token) == 410
    assert load_status(ctx, other_token) == "ok"
    assert load_status(ctx, binding_token) == "ok"


def test_void_tokens_for_address_matches_case_insensitively(ctx: AppContext) -> None:
    account_id = add_account(ctx, email=ADDRESS)
    token, _ = issue(ctx, account_id)
    with ctx.db.session() as session:
        assert void_tokens_for_address(session, account_id, "wang@EXAMPLE.com") == 1
    assert load_status(ctx, token) == 410
    with ctx.db.session() as session:
        assert session.scalar(select(VerificationToken.voided_at)) is not None


def test_a_legacy_link_mailed_before_the_short_format_still_verifies(ctx: AppContext, client) -> None:
    from tests.web.test_verify import PASSWORD
    from tests.web.test_verify import add_account as add_applicant

    account_id = add_applicant(ctx)
    token, _ = issue_legacy(ctx, account_id, "example@gmail.com")
    assert client.get(f"/verify/{token}").status_code == 200
    assert client.post(f"/verify/{token}", data={"password": PASSWORD}).status_code == 200
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.is_verified
