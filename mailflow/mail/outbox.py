"""The transactional outbox: queueing a mail is a row written in the caller's transaction, so a state
change and its mail commit together or not at all. Dispatch (mailflow.mail.dispatch) sends them, woken by
the commit (mailflow.mail.wake)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.mail import TEMPLATE_NAMES, addresses, states
from mailflow.mail.wake import mail_queued
from mailflow.models import OutboxEvent, OutboxMessage, OutboxStatus, Suppression
from mailflow.notify.templates import is_api_template
from mailflow.timeutil import iso_taipei


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
    message.context = states.step(states.NEW, status, context=message.context).get("context", message.context)
    session.add(message)
    session.flush()
    session.add(OutboxEvent(outbox_id=message.id, from_status="", to_status=status,
                            detail="address suppressed" if status == OutboxStatus.SUPPRESSED else None))
    if status == OutboxStatus.QUEUED:
        mail_queued(session)  # dispatch wakes when this transaction commits
    return message


def transition(
    session: Session,
    row: OutboxMessage,
    to_status: str,
    *,
    smtp_code: int | None = None,
    detail: str | None = None,
) -> OutboxEvent:
    """Move ``row`` to ``to_status`` as the state machine says (mailflow.mail.states.step: a final state
    erases the raw tokens, leaving ``sending`` ends the lease) and persist the step with the SMTP reply that
    caused it."""
    values = states.step(row.status, to_status, context=row.context)
    event = OutboxEvent(outbox_id=row.id, from_status=row.status, to_status=values["status"],
                        smtp_code=smtp_code, detail=detail)
    for column, value in values.items():
        setattr(row, column, value)
    if detail is not None:
        row.last_reply = detail
    session.add(event)
    return event


def summary(row: OutboxMessage) -> dict[str, Any]:
    """One outbox row as an operator reads it: no context (it may hold a one-time link); times ISO, Taipei."""
    return {
        "id": row.id, "template": row.template, "to": row.to_address, "status": row.status,
        "attempts": row.attempts, "created_at": iso_taipei(row.created_at),
        "next_attempt_at": iso_taipei(row.next_attempt_at),
        "sent_at": iso_taipei(row.sent_at), "last_reply": row.last_reply, "message_id": row.message_id,
    }


def listing(session: Session, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` mails (of ``status`` when given), each as summary() says (`mailflow outbox
    list`)."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    return [summary(row) for row in session.scalars(query)]
