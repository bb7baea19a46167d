"""complete_verification (the CLI's and tests' way to use a link) runs every step in the caller's session:
what the caller rolls back leaves nothing behind, on SQLite too, where a savepoint opened before the
transaction's first write used to commit on its own at its release."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from mailflow.accounts.verification import VerifyError, complete_verification, send_verification_mail
from mailflow.context import AppContext
from mailflow.models import Account, VerificationToken
from tests.factories import add_account


def _token(ctx: AppContext, account_id: int) -> str:
    with ctx.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        message = send_verification_mail(session, ctx.settings, account, "account-approved")
        return urlsplit(str(message.context["verify_url"])).path.rsplit("/", 1)[1]


def _wrong_passwords(ctx: AppContext, account_id: int) -> int:
    with ctx.db.session() as session:
        mine = select(VerificationToken).where(VerificationToken.account_id == account_id)
        return session.scalars(mine).one().wrong_passwords


def test_a_rolled_back_completion_counts_no_try(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    token = _token(ctx, account_id)
    session = ctx.db.sessionmaker()
    try:
        with pytest.raises(VerifyError) as refused:
            complete_verification(session, ctx.settings, token, "not-the-password")
        assert refused.value.status == 403
        session.rollback()
    finally:
        session.close()
    assert _wrong_passwords(ctx, account_id) == 0


def test_a_committed_wrong_password_counts_one_try(ctx: AppContext) -> None:
    account_id = add_account(ctx)
    token = _token(ctx, account_id)
    # the caller keeps what the refusal wrote
    with ctx.db.session() as session, pytest.raises(VerifyError):
        complete_verification(session, ctx.settings, token, "not-the-password")
    assert _wrong_passwords(ctx, account_id) == 1
