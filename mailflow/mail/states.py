"""The outbox's state machine, written once: the states, which moves between them are allowed, and what a
move does to a row. Every writer of an outbox row's state asks ``step`` for the new column values — the ORM
path (mailflow.mail.outbox.transition, used by operators, suppression and lease reclaim) and the Core path of
dispatch (mailflow.mail.dispatch.settle) — so a rule such as "a final row holds no raw token" cannot be
forgotten by one of them.

    (new) ──> queued ──> sending ──> sent
                 │  ▲       │  ╲──> failed ──> queued (an operator's retry)
                 │  │       ▼
                 │  └──── retry ──> sending …
                 ▼
             suppressed ──> queued (an operator's retry, after the address is lifted)

``sending`` goes back to where it was claimed from when a tick hands a claim back (release), and to
``retry`` when a dead worker's lease expires (reclaim).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from mailflow.mail import catalog


class OutboxStatus(StrEnum):
    """Stored as these strings (the column is unchanged)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


FINAL = frozenset({OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED})
DUE = (OutboxStatus.QUEUED, OutboxStatus.RETRY)
# Waiting to be sent: what suppressing an address stops.
WAITING = DUE

# A new row's first state has no "from": the empty string, as the outbox_events table records it.
NEW = ""

ALLOWED: Mapping[str, frozenset[OutboxStatus]] = {
    NEW: frozenset({OutboxStatus.QUEUED, OutboxStatus.SUPPRESSED}),
    OutboxStatus.QUEUED: frozenset({OutboxStatus.SENDING, OutboxStatus.SUPPRESSED, OutboxStatus.QUEUED}),
    OutboxStatus.RETRY: frozenset({OutboxStatus.SENDING, OutboxStatus.SUPPRESSED, OutboxStatus.QUEUED}),
    OutboxStatus.SENDING: frozenset({OutboxStatus.SENT, OutboxStatus.RETRY, OutboxStatus.FAILED,
                                     OutboxStatus.SUPPRESSED, OutboxStatus.QUEUED}),
    OutboxStatus.FAILED: frozenset({OutboxStatus.QUEUED}),
    OutboxStatus.SUPPRESSED: frozenset({OutboxStatus.QUEUED}),
    OutboxStatus.SENT: frozenset(),
}

# Context keys holding a raw one-time link (the catalogue's link_key of each mail): needed to render the
# mail, never kept once it is final.
SECRET_CONTEXT_KEYS = catalog.SECRET_CONTEXT_KEYS


class TransitionError(ValueError):
    """A move the state machine does not allow (a bug in the caller, never a user's input)."""


def without_secrets(context: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in context.items() if key not in SECRET_CONTEXT_KEYS}


def holds_secrets(context: Mapping[str, Any]) -> bool:
    return any(key in context for key in SECRET_CONTEXT_KEYS)


def step(current: str, new: str, *, context: Mapping[str, Any], moment: datetime | None = None
         ) -> dict[str, Any]:
    """The column values a row in state ``current`` takes when it moves to ``new``: its status; on a final
    state the raw links erased from its context; out of ``sending`` the lease let go; on ``sent`` the time it
was sent.
    Columns a move leaves alone are not in the answer. Raises TransitionError for a move not in ALLOWED."""
    target = OutboxStatus(new)
    if target not in ALLOWED.get(current, frozenset()):
        raise TransitionError(f"outbox: {current or '(new)'} -> {target} is not a move of the state machine")
    values: dict[str, Any] = {"status": target}
    if target != OutboxStatus.SENDING:  # a lease belongs to a claim being sent, and ends with it
        values.update(claimed_by=None, lease_expires_at=None)
    if target in FINAL and holds_secrets(context):
        values["context"] = without_secrets(context)
    if target == OutboxStatus.SENT and moment is not None:
        values["sent_at"] = moment
    return values
