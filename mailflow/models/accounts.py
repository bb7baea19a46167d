"""Applicants' side: accounts (一般帳號 / 共用帳號), applications with their company data and
document, verification tokens, and shared-account bindings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailflow.models.base import Base, utcnow


class AccountKind(StrEnum):
    GENERAL = "general"
    SHARED = "shared"


class AccountStatus(StrEnum):
    PENDING = "pending"  # submitted, waiting for review (general) / for its mail verification (shared)
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class Account(Base):
    """A login. ``account_key`` is the lower-cased account id while the account is live and NULL once it
    is rejected, so a unique index enforces 'unique among live accounts' on every backend."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(String(10), default=AccountKind.GENERAL)
    account: Mapped[str] = mapped_column(String(40))
    account_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    mobile: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), index=True)  # lower-cased, for comparisons
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[AccountStatus] = mapped_column(String(12), default=AccountStatus.PENDING, index=True)
    email_verified_at: Mapped[datetime | None]
    email_verified_address: Mapped[str | None] = mapped_column(String(320))
    email_undeliverable: Mapped[bool] = mapped_column(default=False)  # "Email 無法送達"
    # Part of every session cookie; logging out adds one, which ends every session of the account (on
    # every device: the cookie is the only session state, so one device cannot be told from another).
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    reminder_sent_at: Mapped[datetime | None]

    applications: Mapped[list[Application]] = relationship(back_populates="account")

    @property
    def is_verified(self) -> bool:
        verified = (self.email_verified_address or "").lower()
        return self.email_verified_at is not None and verified == self.email_key


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class DocumentStore(StrEnum):
    """Where a document's bytes are: a file under storage.documents_dir named ``stored_name``, or rows of
    ``document_chunks`` written in the transaction that wrote the document row."""

    FILESYSTEM = "filesystem"
    DATABASE = "database"


class Document(Base):
    """A company proof document with a random name (``stored_name``); its bytes are where ``stored_in``
    says. ``purged_at``: the retention job removed the bytes (a rejected application's, after
    storage.retention_days); the row stays for the audit trail."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_in: Mapped[DocumentStore] = mapped_column(String(12), default=DocumentStore.FILESYSTEM,
                                           server_default=DocumentStore.FILESYSTEM)
    purged_at: Mapped[datetime | None]


class DocumentChunk(Base):
    """One fixed-size piece (mailflow.accounts.documents.DB_CHUNK bytes, the last one shorter) of a
    document stored in the database; ``seq`` counts from 0. Deleting the document deletes its chunks."""

    __tablename__ = "document_chunks"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Application(Base):
    """A general account's registration: company data, its proof document and the review outcome.
    ``ubn_key`` is the 統一編號 while the application is live (NULL once rejected)."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    ubn: Mapped[str] = mapped_column(String(10))
    ubn_key: Mapped[str | None] = mapped_column(String(10), unique=True)
    company_phone: Mapped[str] = mapped_column(String(40))
    company_name: Mapped[str] = mapped_column(String(100))
    company_address: Mapped[str] = mapped_column(String(200))
    company_owner: Mapped[str] = mapped_column(String(60))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    status: Mapped[ApplicationStatus] = mapped_column(String(12), default=ApplicationStatus.SUBMITTED)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(60))
    approval_note: Mapped[str | None] = mapped_column(Text)
    reject_reasons: Mapped[list[Any] | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(back_populates="applications")
    document: Mapped[Document] = relationship()

    __table_args__ = (Index("ix_applications_status_submitted", "status", "submitted_at"),)


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    BINDING = "binding"
    PASSWORD_RESET = "password-reset"  # 1 h; voided by a login, a newer link, a password or Email change
    EMAIL_CHANGE = "email-change"  # bound to the NEW address, completed at /verify with the password


class VerificationToken(Base):
    """Server-side record of a signed token: only its hash is stored; single use, voiding and expiry
    are enforced here while the signature proves the token was ours."""

    __tablename__ = "verification_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320))
    binding_id: Mapped[int | None] = mapped_column(ForeignKey("bindings.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    wrong_passwords: Mapped[int] = mapped_column(default=0)


class BindingStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    UNBOUND = "unbound"


class Binding(Base):
    """A shared account (共用帳號) managing one general account's company."""

    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    shared_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    general_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[BindingStatus] = mapped_column(String(10), default=BindingStatus.PENDING)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    active_ubn: Mapped[bool] = mapped_column(default=False)  # the shared account's selected company
    # The general account as the requester named it (帳號 or registration number): all the shared side is
    # shown of a request until the company confirms it.
    requested_as: Mapped[str | None] = mapped_column(String(40))

    # At most one pending-or-active binding per pair, even when two identical requests race.
    __table_args__ = (
        Index("uq_bindings_live_pair", "shared_account_id", "general_account_id", unique=True,
              sqlite_where=text("status IN ('pending', 'active')"),
              postgresql_where=text("status IN ('pending', 'active')")),
    )
