"""The verify-reminder job: once, three days after approval, an approved general account that has not
verified its address gets ``verify-reminder`` with a fresh link (the older link is voided).

Run by the scheduler under a singleton lease; each account is claimed with a conditional UPDATE on
``reminder_sent_at`` in its own transaction, so a crash or a second worker never sends it twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from mailflow.accounts.verification_mail import send_verification_mail
from mailflow.context import AppContext
from mailflow.models import Account, AccountKind, AccountStatus
from mailflow.timeutil import now

log = logging.getLogger(__name__)

REMIND_AFTER = timedelta(days=3)
BATCH = 200


def due_account_ids(ctx: AppContext, limit: int = BATCH) -> list[int]:
    with ctx.db.session() as session:
        return list(session.scalars(
            select(Account.id).where(
                Account.kind == AccountKind.GENERAL, Account.status == AccountStatus.APPROVED,
                Account.reminder_sent_at.is_(None), Account.approved_at <= now() - REMIND_AFTER,
            ).order_by(Account.approved_at).limit(limit)
        ))


def remind(ctx: AppContext, account_id: int) -> bool:
    """Queue the reminder for one account unless it is verified or was reminded already."""
    with ctx.db.session() as session:
        claimed = session.execute(
            update(Account).where(Account.id == account_id, Account.reminder_sent_at.is_(None))
            .values(reminder_sent_at=now()).execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False
        account = session.get(Account, account_id)
        if account is None or account.is_verified:
            return False  # keeps reminder_sent_at: a verified account is never reminded later
        send_verification_mail(session, ctx.settings, account, "verify-reminder")
        return True


def run(ctx: AppContext) -> int:
    """One scheduler tick; returns how many reminders were queued."""
    sent = sum(remind(ctx, account_id) for account_id in due_account_ids(ctx))
    if sent:
        log.info("queued %d verify-reminder mails", sent)
    return sent
