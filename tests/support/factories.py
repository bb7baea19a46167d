"""Test data for the support tests, made directly with the models (no HTTP round trips)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.models import (
    Account,
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

APPLICANT_PASSWORD = "Harbour-pass-2024"
STAFF_PASSWORD = "Support-pass-2024"
RAW_BOUNCE = (
    b"From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <b1@mx.example.com>\r\n\r\n<wang@example.com>: 550 5.1.1 user unknown\r\n"
)


@lru_cache(maxsize=4)
def password_hash(password: str) -> str:
    return hash_password(password)  # argon2 is slow by design: hash each test password once


def make_applicant(
    session: Session,
    *,
    account: str = "wang1234",
    name: str = "王小明",
    email: str = "wang@example.com",
    ubn: str = "04595257",
    mobile: str = "0912345678",
    company: str = "臺灣港務股份有限公司基隆分公司",
    status: str = ApplicationStatus.APPROVED,
    decided_at: datetime | None = None,
) -> tuple[Account, Application]:
    approved = status == ApplicationStatus.APPROVED
    acc = Account(
        account=account,
        account_key=account.lower(),
        name=name,
        mobile=mobile,
        email=email,
        email_key=email.lower(),
        password_hash=password_hash(APPLICANT_PASSWORD),
        status=AccountStatus.APPROVED if approved else AccountStatus.PENDING,
        approved_at=decided_at or now() if approved else None,
    )
    session.add(acc)
    session.flush()
    doc = Document(
        stored_name=f"doc-{acc.id}-{account}",
        original_name="登記表.pdf",
        content_type="application/pdf",
        size=10,
        sha256="0" * 64,
    )
    session.add(doc)
    session.flush()
    app = Application(
        account_id=acc.id,
        ubn=ubn,
        ubn_key=ubn,
        company_phone="02-12345678#12345",
        company_name=company,
        company_address="804004高雄市鼓山區蓬萊路10號",
        company_owner="陳大文",
        document_id=doc.id,
        status=status,
        decided_at=(decided_at or now()) if approved else None,
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


def make_staff(session: Session, name: str = "chen", role: str = "support") -> StaffUser:
    staff = StaffUser(name=name, role=role, password_hash=password_hash(STAFF_PASSWORD))
    session.add(staff)
    session.flush()
    return staff


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


def csrf_of(client: TestClient, path: str = "/support") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def ago(**kwargs: float) -> datetime:
    return now() - timedelta(**kwargs)
