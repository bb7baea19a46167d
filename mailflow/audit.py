"""The audit trail: one row per decision or support action, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mailflow.models import AuditEvent


def record(
    session: Session, actor: str, action: str, target_type: str, target_id: int | None, **details: Any
) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, target_type=target_type, target_id=target_id,
                       details=details)
    session.add(event)
    return event
