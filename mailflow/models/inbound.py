"""Incoming mail: every received message stored raw before anything else, what it was understood
to be, the recipients a bounce names, and the IMAP poller's position."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.models.base import Base, utcnow


class InboundStatus(StrEnum):
    STORED = "stored"  # received, not yet understood
    PROCESSED = "processed"
    QUARANTINED = "quarantined"


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(10))  # imap | smtp | import
    source_ref: Mapped[str] = mapped_column(String(200), default="")
    header_message_id: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # emptied by retention after processing
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    envelope_to: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[InboundStatus] = mapped_column(String(12), default=InboundStatus.STORED, index=True)
    kind: Mapped[str | None] = mapped_column(String(12))
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    forged: Mapped[bool] = mapped_column(default=False)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    from_address: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str | None] = mapped_column(Text)
    # Replies only: whether the From address is proven (mailflow.inbound.sender_auth: pass/fail/none)
    # and what the verdict rests on.
    sender_auth: Mapped[str | None] = mapped_column(String(8))
    sender_auth_detail: Mapped[str] = mapped_column(String(300), default="")
    processed_at: Mapped[datetime | None]

    # The same message twice (same Message-ID and same bytes) is recorded once.
    __table_args__ = (UniqueConstraint("header_message_id", "sha256", name="uq_inbound_identity"),)


class BounceRecipient(Base):
    __tablename__ = "bounce_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(10))
    hard: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class ImapCursor(Base):
    """Where the poller stopped in one folder: a restart does not re-read, a new UIDVALIDITY resets."""

    __tablename__ = "imap_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(400), unique=True)  # user@host/folder
    uidvalidity: Mapped[int]
    last_uid: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
