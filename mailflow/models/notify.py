"""The notification service for the rest of the pass system: API keys and their uses, notifications
sent through the API (each one an outbox row), the event outbox with its sequencer, and the webhook
subscribers events are delivered to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.models.base import Base, utcnow


class ApiScope(StrEnum):
    NOTIFY = "notify"  # send notifications and read their status
    EVENTS = "events"  # read the event feed


class ApiKey(Base):
    """A key another part of the pass system calls the API with. Only a keyed hash of the key is kept
    (mailflow.notify.apikeys says why a fast one). ``rate_tat`` is the rate limiter's state: the
    "theoretical arrival time" of GCRA, in seconds since the epoch (see apikeys.take_turn)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # "mf_" and a few characters, to tell keys apart
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    rate_per_minute: Mapped[int]
    rate_tat: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Counters for /metrics, kept on the row by the same statement that decides the request.
    allowed: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_limited: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)  # wrong scope or revoked


class ApiKeyUse(Base):
    """One request made with a key, whatever its answer: the keys' audit trail."""

    __tablename__ = "api_key_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))  # allowed | rate_limited | forbidden | revoked
    client: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_api_key_uses_key_at", "key_id", "at"),)


class Notification(Base):
    """A mail another system asked for through POST /api/v1/notifications. The mail itself is the
    outbox row; this row holds what only the API knows (who asked, the reference, the idempotency key)
    and what the bounce that came back said."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), unique=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    template: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    # Cleared once older than a day, so the same key may then name a new request.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delayed_at: Mapped[datetime | None]  # a delay notice (DSN action delayed) proved to be about it
    bounced_at: Mapped[datetime | None]
    bounce_hard: Mapped[bool | None]
    bounce_reason: Mapped[str | None] = mapped_column(String(40))
    bounce_status: Mapped[str | None] = mapped_column(String(12))

    # The same key twice from one API key is one notification, even when both requests race.
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_notifications_idempotency"),)


class Event(Base):
    """One change another system may want to hear about, written in the transaction of the change.
    ``seq`` is given after commit by mailflow.notify.events.sequence_pending, in the order rows become
    visible, so a reader that went past seq N never misses an event committed later."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class EventSequence(Base):
    """The one row whose lock makes sequencing single-file on every backend; ``last_seq`` is the
    highest seq given so far."""

    __tablename__ = "event_sequence"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookSubscriber(Base):
    """A URL that receives the events of the types it chose, signed with its own secret (kept as is:
    signing needs it). ``cursor`` is the seq up to which it acknowledged every event; each account's
    events go in seq order, so one that fails holds that account's later ones (mailflow.notify.webhooks),
    and is retried with backoff until ``webhooks.give_up_hours``, then the subscriber is disabled."""

    __tablename__ = "webhook_subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    next_attempt_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(default=0)  # in a row, since the last success
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_failure: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
