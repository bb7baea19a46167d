"""The periodic sweep that finds what no event announces: applicants approved but still unverified more
than 3 days after their verification mail, and mails that dispatch gave up on. Each becomes a support
item once; running the sweep again (on any worker, at any interval) opens nothing new."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from mailflow.context import AppContext
from mailflow.mail.catalog import VERIFICATION_TEMPLATES
from mailflow.models import (
    Account,
    AccountStatus,
    Application,
    ApplicationStatus,
    OutboxMessage,
    OutboxStatus,
    SupportItem,
    SupportKind,
)
from mailflow.support.items import open_item
from mailflow.timeutil import now

log = logging.getLogger(__name__)

UNVERIFIED_AFTER = timedelta(days=3)
BATCH = 500  # per run; the next run picks up the rest


@dataclass
class SweepResult:
    unverified: int = 0
    mail_failed: int = 0


def _unverified_condition() -> ColumnElement[bool]:
    verified_address = func.lower(func.coalesce(Account.email_verified_address, ""))
    return or_(Account.email_verified_at.is_(None), verified_address != Account.email_key)


def _latest_verification_mail(session: Session, account_id: int) -> OutboxMessage | None:
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.account_id == account_id, OutboxMessage.template.in_(VERIFICATION_TEMPLATES))
        .order_by(OutboxMessage.id.desc()).limit(1)
    ).first()


def open_unverified_items(session: Session, moment: datetime) -> int:
    """Approved > 3 days ago, the newest verification mail also > 3 days old, and still unverified."""
    cutoff = moment - UNVERIFIED_AFTER
    already_open = exists().where(SupportItem.kind == SupportKind.UNVERIFIED,
                                  SupportItem.account_id == Account.id, SupportItem.resolved_at.is_(None))
    rows = session.execute(
        select(Account, Application)
        .join(Application, Application.account_id == Account.id)
        .where(Application.status == ApplicationStatus.APPROVED, Account.status == AccountStatus.APPROVED,
               Application.decided_at < cutoff, _unverified_condition(), ~already_open)
        .order_by(Account.id).limit(BATCH)
    ).all()
    opened = 0
    for account, application in rows:
        mail = _latest_verification_mail(session, account.id)
        if mail is not None and mail.created_at >= cutoff:
            continue  # a fresh link went out: give the applicant their 3 days with it
        outbox_id = mail.id if mail else None
        handled = session.scalar(select(SupportItem.id).where(
            SupportItem.kind == SupportKind.UNVERIFIED, SupportItem.account_id == account.id,
            SupportItem.outbox_id == outbox_id if outbox_id else SupportItem.outbox_id.is_(None)).limit(1))
        if handled is not None:
            continue  # staff already resolved this one for this same mail
        open_item(session, SupportKind.UNVERIFIED, account_id=account.id, application_id=application.id,
                  outbox_id=outbox_id, address=account.email,
                  summary="帳號已核准超過 3 天,申請人仍未完成 Email 驗證")
        opened += 1
    return opened


def open_failed_mail_items(session: Session) -> int:
    """One item per outbox row that ended `failed` (dispatch gave up or the relay refused for good)."""
    seen = exists().where(SupportItem.kind == SupportKind.MAIL_FAILED,
                          SupportItem.outbox_id == OutboxMessage.id)
    rows = session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED, ~seen)
        .order_by(OutboxMessage.id).limit(BATCH)
    ).all()
    for mail in rows:
        open_item(session, SupportKind.MAIL_FAILED, account_id=mail.account_id,
                  application_id=mail.application_id, outbox_id=mail.id, address=mail.to_address,
                  diagnostic=(mail.last_reply or "")[:2000], summary="郵件寄送失敗,系統已停止重試")
    return len(rows)


def sweep_session(session: Session, moment: datetime | None = None) -> SweepResult:
    moment = moment or now()
    return SweepResult(open_unverified_items(session, moment), open_failed_mail_items(session))


def sweep(ctx: AppContext) -> SweepResult:
    """The scheduler's entry: one transaction, logged counts (no personal data)."""
    with ctx.db.session() as session:
        result = sweep_session(session)
    if result.unverified or result.mail_failed:
        log.info("support sweep opened %d unverified and %d mail-failed items", result.unverified,
                 result.mail_failed)
    return result
