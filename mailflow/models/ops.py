"""Staff logins, the audit trail, customer-service items, login throttling, request counters and
singleton-job leases."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.models.base import Base, utcnow


class StaffRole(StrEnum):
    REVIEWER = "reviewer"
    SUPPORT = "support"
    ADMIN = "admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[StaffRole] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Part of every staff session cookie, with the password hash: logging out (or a new password) adds
    # one, which ends every session of that staff member, a kept copy of the cookie included.
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class AuditEvent(Base):
    """Who did what to which record, when and why — every decision and support action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # "staff:<name>", "account:<id>", "system"
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)


class SupportKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    REPLY = "reply"
    FORWARDED_VERIFICATION = "forwarded_verification"
    UNVERIFIED = "unverified"
    MAIL_FAILED = "mail_failed"
    AUTOREPLY = "autoreply"  # low priority: one item per account, later auto-replies as its notes


class SupportItem(Base):
    """Something customer service (客服) must look at."""

    __tablename__ = "support_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SupportKind] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    address: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(String(40), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    # Items opened by replies: the weakest sender verdict among the mails on it (pass/fail/none), so a
    # forged mail added to a genuine applicant's open item still marks the item.
    sender_auth: Mapped[str | None] = mapped_column(String(8))
    assigned_to: Mapped[str | None] = mapped_column(String(60))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(60))

    # Open items newest first, by kind: the dashboard's main query stays index-only at 100,000 items.
    __table_args__ = (
        Index("ix_support_open", "resolved_at", "created_at"),
        Index("ix_support_kind", "kind", "created_at"),
    )


class SupportNote(Base):
    __tablename__ = "support_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("support_items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)


class RateCounter(Base):
    """How many requests one key (e.g. a client address asking whether an account id is free) made in
    the current fixed window, shared by every worker (see mailflow.ratelimit)."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_end: Mapped[int] = mapped_column(BigInteger, index=True)  # unix seconds when the window closes
    count: Mapped[int] = mapped_column(default=0)


class JobLease(Base):
    """A singleton job (IMAP poll, reminders, digest, housekeeping) runs where this lease is held."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime]
    last_run_key: Mapped[str | None] = mapped_column(String(60))  # e.g. the digest's date, sent once
