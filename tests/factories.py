"""The test data of every folder, made straight with the models (no HTTP round trips): accounts and
their companies, staff, mails, support items. Two layers: ``make_*`` add rows to a session the caller
holds; ``add_*`` open a session of their own on a context, commit, and return ids.

Passwords are hashed once per run (argon2 is slow by design); a test signs in with the constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mailflow.accounts import shared
from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.models import (
    Account,
    AccountKind,
    AccountStatus,
    Application,
    ApplicationStatus,
    BounceRecipient,
    Document,
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    StaffUser,
    SupportItem,
    SupportKind,
)
from mailflow.passwords import hash_password
from mailflow.timeutil import now

PASSWORD = "Harbour-pass-2024"
SHARED_PASSWORD = "Shared1pass"
STAFF_PASSWORD = "Support-pass-2024"
UBN = "04595257"
RAW_BOUNCE = (
    b"From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <b1@mx.example.com>\r\n\r\n<wang@example.com>: 550 5.1.1 user unknown\r\n"
)


@cache
def password_hash(password: str) -> str:
    return hash_password(password)  # argon2 is slow by design: hash each test password once


# --- rows in the caller's session ---------------------------------------------------------------------


def make_account(
    session: Session,
    *,
    account: str = "wang1234",
    name: str = "王小明",
    email: str = "wang@example.com",
    mobile: str = "0912345678",
    kind: str = AccountKind.GENERAL,
    status: str = AccountStatus.APPROVED,
    password: str = PASSWORD,
    verified: bool = False,
    approved_at: datetime | None = None,
) -> Account:
    """An account as review leaves it (approved by default); ``verified`` marks its address verified."""
    approved = status == AccountStatus.APPROVED
    row = Account(
        kind=kind, account=account, account_key=account.lower(), name=name, mobile=mobile, email=email,
        email_key=email.lower(), password_hash=password_hash(password), status=status,
        approved_at=(approved_at or now()) if approved else None,
        email_verified_at=now() if verified else None, email_verified_address=email if verified else None,
    )
    session.add(row)
    session.flush()
    return row


def make_applicant(
    session: Session,
    *,
    account: str = "wang1234",
    name: str = "王小明",
    email: str = "wang@example.com",
    ubn: str | None = UBN,
    mobile: str = "0912345678",
    company: str = "臺灣港務股份有限公司基隆分公司",
    status: str = ApplicationStatus.APPROVED,
    account_status: str | None = None,
    decided_at: datetime | None = None,
    verified: bool = False,
    password: str = PASSWORD,
) -> tuple[Account, Application]:
    """A general account and its company's application. ``status`` is the application's; the account is
    approved with an approved application and pending otherwise, unless ``account_status`` says.
    ``ubn=None`` gives a 統一編號 of its own (from the account's id), for tests that make many."""
    approved = status == ApplicationStatus.APPROVED
    account_status = account_status or (AccountStatus.APPROVED if approved else AccountStatus.PENDING)
    acc = make_account(session, account=account, name=name, email=email, mobile=mobile, password=password,
                       status=account_status, verified=verified, approved_at=decided_at)
    # The stored name tests write the file under (the account id is unique among live accounts).
    doc = Document(stored_name=f"{account}.pdf", original_name="登記表.pdf",
                   content_type="application/pdf", size=10, sha256="0" * 64)
    session.add(doc)
    session.flush()
    number = ubn if ubn is not None else f"{acc.id:08d}"
    app = Application(
        account_id=acc.id, ubn=number, ubn_key=number, company_phone="02-12345678#12345",
        company_name=company, company_address="804004高雄市鼓山區蓬萊路10號", company_owner="陳大文",
        document_id=doc.id, status=status, decided_at=(decided_at or now()) if approved else None,
    )
    session.add(app)
    session.flush()
    return acc, app


def make_mail(
    session: Session,
    acc: Account,
    template: str = "account-approved",
    *,
    status: str = OutboxStatus.SENT,
    sent_at: datetime | None = None,
    context: dict[str, object] | None = None,
) -> OutboxMessage:
    moment = sent_at or now()
    mail = OutboxMessage(
        template=template,
        to_address=acc.email,
        to_key=acc.email_key,
        to_name=acc.name,
        context=context or {"name": acc.name, "account": acc.account},
        account_id=acc.id,
        message_id=f"<m{acc.id}-{template}-{moment.timestamp()}@test>",
        status=status,
        created_at=moment,
        sent_at=moment if status == OutboxStatus.SENT else None,
    )
    session.add(mail)
    session.flush()
    return mail


def make_bounce_item(
    session: Session,
    acc: Account,
    app: Application,
    mail: OutboxMessage,
    *,
    created_at: datetime | None = None,
    reason: str = "userunknown",
) -> SupportItem:
    inbound = InboundMessage(
        source="smtp",
        header_message_id=f"<b{mail.id}@mx.example.com>",
        sha256=f"{mail.id:064d}",
        size=len(RAW_BOUNCE),
        raw=RAW_BOUNCE,
        kind="bounce",
        status="processed",
        outbox_id=mail.id,
        account_id=acc.id,
        subject="Undelivered Mail Returned to Sender",
        received_at=created_at or now(),
    )
    session.add(inbound)
    session.flush()
    session.add(
        BounceRecipient(
            inbound_id=inbound.id,
            address=acc.email,
            action="failed",
            hard=True,
            reason=reason,
            status="5.1.1",
            diagnostic="550 5.1.1 user unknown",
            outbox_id=mail.id,
        )
    )
    item = SupportItem(
        kind=SupportKind.HARD_BOUNCE,
        created_at=created_at or now(),
        account_id=acc.id,
        application_id=app.id,
        outbox_id=mail.id,
        inbound_id=inbound.id,
        address=acc.email,
        reason=reason,
        diagnostic="550 5.1.1 <wang@example.com>: user unknown",
    )
    session.add(item)
    session.flush()
    return item


def make_item(
    session: Session,
    kind: str = SupportKind.REPLY,
    *,
    account_id: int | None = None,
    created_at: datetime | None = None,
    address: str = "",
    resolved: bool = False,
) -> SupportItem:
    item = SupportItem(
        kind=kind,
        created_at=created_at or now(),
        account_id=account_id,
        address=address,
        resolved_at=now() if resolved else None,
        resolved_by="chen" if resolved else None,
    )
    session.add(item)
    session.flush()
    return item


def add_staff(ctx: AppContext, name: str = "lin", role: str = "reviewer") -> None:
    with ctx.db.session() as session:
        make_staff(session, name, role)


def make_staff(session: Session, name: str = "chen", role: str = "support",
               password: str = STAFF_PASSWORD) -> StaffUser:
    staff = StaffUser(name=name, role=role, password_hash=password_hash(password))
    session.add(staff)
    session.flush()
    return staff


# --- rows committed on a context ----------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    account_id: int
    application_id: int
    email: str


def add_applicant(ctx: AppContext, account: str = "example1234",
                  email: str = "wang@example.com") -> Applicant:
    """An approved applicant with a 統一編號 of its own (many may be added in one test)."""
    with ctx.db.session() as session:
        acc, app = make_applicant(session, account=account, email=email, ubn=None,
                                  status=ApplicationStatus.SUBMITTED, account_status=AccountStatus.APPROVED)
        return Applicant(acc.id, app.id, email)


def add_account(ctx: AppContext, account: str = "example1234", email: str = "example@gmail.com",
                status: str = AccountStatus.APPROVED, *, verified: bool = False) -> int:
    """An account without a company (enough for tokens, verification and sign-in); returns its id."""
    with ctx.db.session() as session:
        return make_account(session, account=account, email=email, status=status, verified=verified).id


def verified_account(ctx: AppContext, account: str = "example1234", email: str = "wang@example.com") -> int:
    """An approved account whose ``email`` is verified; returns its id."""
    return add_account(ctx, account, email, verified=True)


def add_general(ctx: AppContext, account: str, ubn: str, *, verified: bool = True,
                status: str = AccountStatus.APPROVED) -> int:
    """A general account with its approved company, as review and verification leave it."""
    with ctx.db.session() as session:
        acc, _app = make_applicant(session, account=account, email=f"{account}@example.com", ubn=ubn,
                                   company=f"{account}股份有限公司", account_status=status, verified=verified)
        return acc.id


def add_shared(ctx: AppContext, account: str = "manager01", *, verified: bool = True) -> int:
    """A 共用帳號 registered through the domain code (approved at once)."""
    with ctx.db.session() as session:
        clean = {"account": account, "name": "林美玲", "mobile": "0922333444",
                 "email": f"{account}@example.org"}
        row = shared.create_shared_account(session, clean, password_hash(SHARED_PASSWORD))
        if verified:
            row.email_verified_at, row.email_verified_address = now(), row.email
        return row.id


def add_submitted(ctx: AppContext, account: str = "example1234", ubn: str = UBN) -> int:
    """A pending general account with its submitted application, as registration leaves them; returns the
    application's id."""
    with ctx.db.session() as session:
        _acc, app = make_applicant(session, account=account, email=f"{account}@example.com", ubn=ubn,
                                   status=ApplicationStatus.SUBMITTED)
        return app.id


# --- signing in ---------------------------------------------------------------------------------------


def sign_in(client: TestClient, settings: Settings, staff: StaffUser) -> None:
    """Sign in through the real /staff/login form (the session cookie's format is staff_auth's own)."""
    answer = client.post(
        "/staff/login",
        data={
            "name": staff.name,
            "password": STAFF_PASSWORD,
            "next": "/support",
            "csrf_token": csrf_of(client, "/staff/login"),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:300]


def staff_login(client: TestClient, name: str = "lin", password: str = STAFF_PASSWORD, next_url: str = ""):
    """POST /staff/login with the form's CSRF token; the answer (303 on success) for the test to read."""
    token = csrf_of(client, "/staff/login")
    return client.post("/staff/login", data={"name": name, "password": password, "next": next_url,
                                             "csrf_token": token}, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/support") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def ago(**kwargs: float) -> datetime:
    return now() - timedelta(**kwargs)
