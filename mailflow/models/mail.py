"""Outgoing mail: the outbox (one row per mail, an explicit state machine), its transitions, the
suppression list, per-address delivery health, and the capture mailbox of development mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.mail.states import OutboxStatus
from mailflow.models.base import Base, utcnow

# The claim query repeats this text exactly, so both SQLite and PostgreSQL match it to the partial index.
DUE_SQL = "status IN ('queued', 'retry')"


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(40), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    to_key: Mapped[str] = mapped_column(String(320), index=True)  # lower-cased
    to_name: Mapped[str] = mapped_column(String(120), default="")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("verification_tokens.id"))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(String(12), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_reply: Mapped[str | None] = mapped_column(Text)
    autoreply_seen: Mapped[bool] = mapped_column(default=False)

    # Listing by status uses ix_outbox_due. The dispatch claim asks for two statuses ordered by time,
    # which a (status, time) index cannot return in order; the partial index holds only due rows, in
    # time order, so a claim reads its batch off the index whatever the size of the table.
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_due_at", "next_attempt_at",
              sqlite_where=text(DUE_SQL), postgresql_where=text(DUE_SQL)),
    )


class OutboxEvent(Base):
    """One persisted transition of an outbox row, with the SMTP reply that caused it."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    smtp_code: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(Text)


class Suppression(Base):
    """An address we must not mail (hard bounce, complaint, manual). Lifting keeps the row."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(60))


class AddressHealth(Base):
    """Soft bounces in a row since the last delivery; five make the address hard."""

    __tablename__ = "address_health"

    address_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    soft_bounces: Mapped[int] = mapped_column(default=0)
    last_bounce_at: Mapped[datetime | None]
    last_delivery_at: Mapped[datetime | None]


class CapturedMail(Base):
    """What the embedded capture SMTP server received (smtp.mode = capture)."""

    __tablename__ = "captured_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
