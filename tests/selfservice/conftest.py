"""Fixtures and helpers of the self-service tests (issue 14): accounts made with the models, mails read back
from the embedded capture server after dispatch sent them (the capture path), links taken from the mails
as the holder would."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.context import AppContext
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    OutboxMessage,
    TokenPurpose,
    VerificationToken,
)
from mailflow.timeutil import now
from tests.factories import PASSWORD, make_applicant, password_hash
from tests.test_story import Mailbox, capture, mailbox, text_of  # noqa: F401 (fixtures)

NEW_PASSWORD = "Keelung-port-2025"
LINK = re.compile(r"http://testserver(/\S+)")


def holder(ctx: AppContext, account: str = "wang1234", email: str = "wang@example.com", *,
           ubn: str = "04595257", company: str = "臺灣港務股份有限公司基隆分公司", verified: bool = True,
           status: str = AccountStatus.APPROVED) -> int:
    """An approved general account with its company; verified unless told otherwise."""
    with ctx.db.session() as session:
        acc, _ = make_applicant(session, account=account, email=email, ubn=ubn, company=company)
        acc.status = AccountStatus(status)
        if verified:
            acc.email_verified_at = now()
            acc.email_verified_address = email
        return acc.id


def shared_holder(ctx: AppContext, account: str = "manager01", email: str = "wang@example.com") -> int:
    """A verified 共用帳號 (never reviewed: approved once its address was verified)."""
    with ctx.db.session() as session:
        acc = Account(kind=AccountKind.SHARED, account=account, account_key=account.lower(), name="王小明",
                      mobile="0912345678", email=email, email_key=email.lower(),
                      password_hash=password_hash(PASSWORD), status=AccountStatus.APPROVED,
                      approved_at=now(), email_verified_at=now(), email_verified_address=email)
        session.add(acc)
        session.flush()
        return acc.id


def log_in(client: TestClient, account: str = "wang1234", password: str = PASSWORD) -> int:
    return client.post("/api/session", json={"account": account, "password": password}).status_code


def signed_in(client: TestClient) -> bool:
    """Whether the client's session cookie still opens the account page."""
    page = client.get("/account")
    return page.status_code == 200 and 'action="/account/logout"' in page.text


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def mails_to(mails: list[EmailMessage], address: str, subject: str = "") -> list[EmailMessage]:
    return [m for m in mails if address.lower() in str(m["To"]).lower() and subject in str(m["Subject"])]


def link_in(mail: EmailMessage) -> str:
    found = LINK.search(text_of(mail))
    assert found is not None, text_of(mail)
    return urlsplit(found.group(0)).path


def outbox(ctx: AppContext, template: str) -> list[OutboxMessage]:
    with ctx.db.session() as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.template == template)
                                    .order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def open_tokens(ctx: AppContext, account_id: int, purpose: str = TokenPurpose.PASSWORD_RESET) -> int:
    with ctx.db.session() as session:
        return len(list(session.scalars(select(VerificationToken).where(
            VerificationToken.account_id == account_id, VerificationToken.purpose == purpose,
            VerificationToken.used_at.is_(None), VerificationToken.voided_at.is_(None)))))


def account_row(ctx: AppContext, account_id: int) -> Account:
    with ctx.db.session() as session:
        row = session.get(Account, account_id)
        assert row is not None
        session.expunge(row)
        return row
