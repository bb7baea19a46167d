"""The transactional outbox: queueing a mail is a row written in the caller's transaction, so a state
change and its mail commit together or not at all. Dispatch (mailflow.mail.dispatch) sends them, woken by
the commit (mailflow.mail.wake)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.mail import TEMPLATE_NAMES, addresses
from mailflow.mail.render import SECRET_CONTEXT_KEYS
from mailflow.mail.wake import mail_queued
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.notify.templates import is_api_template


def new_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(16)}@{domain}>"


def is_suppressed(session: Session, address: str) -> bool:
    key = addresses.key(address)
    found = session.execute(
        select(Suppression.id).where(Suppression.address_key == key, Suppression.lifted_at.is_(None)).limit(1)
    ).first()
    return found is not None


def enqueue(
    session: Session,
    template: str,
    to_address: str,
    *,
    message_id_domain: str,
    to_name: str = "",
    context: dict[str, Any] | None = None,
    account_id: int | None = None,
    application_id: int | None = None,
    token_id: int | None = None,
) -> OutboxMessage:
    """Add one mail to the outbox inside ``session`` (not committed here). A suppressed address gets
    the row too, in state ``suppressed``, so customer service sees what was not sent and why."""
    if template not in TEMPLATE_NAMES and not is_api_template(template):
        raise ValueError(f"unknown mail template {template!r}")
    status = OutboxStatus.SUPPRESSED if is_suppressed(session, to_address) else OutboxStatus.QUEUED
    message = OutboxMessage(
        template=template,
        to_address=to_address,
        to_key=addresses.key(to_address),
        to_name=to_name,
        context=context or {},
        account_id=account_id,
        application_id=application_id,
        token_id=token_id,
        message_id=new_message_id(message_id_domain),
        status=status,
    )
    if status == OutboxStatus.SUPPRESSED:
        message.context = without_secrets(message.context)
    session.add(message)
    session.flush()
    session.add(OutboxEvent(outbox_id=message.id, from_status="", to_status=status,
                            detail="address suppressed" if status == OutboxStatus.SUPPRESSED else None))
    if status == OutboxStatus.QUEUED:
        mail_queued(session)  # dispatch wakes when this transaction commits
    return message


def without_secrets(context: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in context.items() if key not in SECRET_CONTEXT_KEYS}


def transition(
    session: Session,
    row: OutboxMessage,
    to_status: str,
    *,
    smtp_code: int | None = None,
    detail: str | None = None,
) -> OutboxEvent:
    """Move ``row`` to ``to_status`` and persist the step (with the SMTP reply that caused it). A final
    state erases the raw tokens from the row's context: they are only needed to render the mail."""
    event = OutboxEvent(outbox_id=row.id, from_status=row.status, to_status=to_status, smtp_code=smtp_code,
                        detail=detail)
    row.status = to_status
    if detail is not None:
        row.last_reply = detail
    if to_status in OutboxStatus.FINAL:
        row.claimed_by = None
        row.lease_expires_at = None
        if any(key in row.context for key in SECRET_CONTEXT_KEYS):
            row.context = without_secrets(row.context)
    session.add(event)
    return event
