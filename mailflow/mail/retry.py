"""An operator's retry of one outbox mail (`mailflow outbox retry ID`): which mails may be queued again
and what a mail whose one-time link was erased needs first. The command only prints what this decides.

Beside mailflow.mail.outbox rather than in it: a verification mail's fresh link comes from
mailflow.accounts.verification, which queues its own mails through mailflow.mail.outbox, so the retry rules
importing it from outbox.py would be an import cycle."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailflow.accounts.verification import RenewRefused, renew_link
from mailflow.config import Settings
from mailflow.mail.catalog import LINK_KEYS, VERIFICATION_TEMPLATES
from mailflow.mail.outbox import transition
from mailflow.mail.wake import mail_queued
from mailflow.models import OutboxMessage, OutboxStatus
from mailflow.timeutil import now

RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.RETRY, OutboxStatus.SUPPRESSED)


class RetryRefused(Exception):
    """Why a mail cannot be queued again (English: an operator reads it on the command line)."""


def retry(session: Session, settings: Settings, outbox_id: int) -> tuple[OutboxMessage, bool]:
    """Queue ``outbox_id`` again, due now; refuses mails that are sent or in flight. A verification mail
    whose one-time link was erased (it reached a final state) gets a fresh one, the old one voided; a
    binding request cannot (the applicant asks again). Returns the row and whether its link is new."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise RetryRefused(f"outbox mail {outbox_id} does not exist")
    if row.status not in RETRYABLE:
        raise RetryRefused(f"outbox mail {outbox_id} is {row.status}; "
                           f"only {', '.join(RETRYABLE)} can be retried")
    secret = LINK_KEYS.get(row.template)  # erased once the mail was final
    renewed = secret is not None and not row.context.get(secret)
    if renewed:
        if row.template not in VERIFICATION_TEMPLATES:
            raise RetryRefused(f"outbox mail {outbox_id} no longer holds its one-time link; the applicant "
                               "has to ask again (a new binding request, password reset or Email change)")
        try:
            renew_link(session, settings, row)
        except RenewRefused as exc:
            raise RetryRefused(f"outbox mail {outbox_id} cannot get a fresh link: {exc}") from None
    transition(session, row, OutboxStatus.QUEUED, detail="retry requested by an operator")
    mail_queued(session)
    row.next_attempt_at = now()
    row.claimed_by = None
    row.lease_expires_at = None
    return row, renewed
