"""What the intake tests share (no tests here; applicants come from tests/factories.py): mails of ours
queued with enqueue and marked sent, and the mails that come back — DSN bounces, ARF complaints,
auto-replies and replies — built as real RFC 3464 / RFC 5965 / RFC 3834 messages."""

from __future__ import annotations

import uuid
from email.utils import format_datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.config import Settings
from mailflow.context import AppContext
from mailflow.mail.outbox import enqueue
from mailflow.mail.returnpath import make_return_path
from mailflow.models import (
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    SupportItem,
    Suppression,
)
from mailflow.timeutil import now
from tests.factories import Applicant


def sent_mail(ctx: AppContext, who: Applicant, template: str = "account-approved", *,
              to: str | None = None, sent: bool = True) -> OutboxMessage:
    """A mail of ours to ``who``; marked sent unless ``sent`` is False (then it is still queued)."""
    with ctx.db.session() as session:
        mail = enqueue(session, template, to or who.email,
                       message_id_domain=ctx.settings.mail.message_id_domain, to_name="王小明",
                       context={"name": "王小明"}, account_id=who.account_id,
                       application_id=who.application_id)
        if sent:
            mail.status = OutboxStatus.SENT
            mail.sent_at = now()
        session.flush()
        return mail


def original_headers(settings: Settings, mail: OutboxMessage, *, return_path: str | None = None) -> str:
    return (f"Return-Path: <{return_path or make_return_path(settings, mail.id)}>\r\n"
            f"From: =?utf-8?b?5riv5Y2A?= <hep@twport.com.tw>\r\n"
            f"To: {mail.to_address}\r\n"
            f"Subject: =?utf-8?b?6YCa6KGM6K2J?=\r\n"
            f"Message-ID: {mail.message_id}\r\n"
            f"Date: {format_datetime(now())}\r\n")


def dsn(settings: Settings, mail: OutboxMessage, *, status: str = "5.1.1", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        rcpt: str | None = None, to: str | None = None, return_path: str | None = None) -> bytes:
    """An RFC 3464 bounce of ``mail`` sent to its return path (or ``to``)."""
    rcpt = rcpt or mail.to_address
    to = to or return_path or make_return_path(settings, mail.id)
    boundary = "b-" + uuid.uuid4().hex
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mx.example.net>\r\n"
        f"Date: {format_datetime(now())}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {diagnostic.format(rcpt=rcpt)}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{original_headers(settings, mail, return_path=return_path)}\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode()


def complaint(settings: Settings, mail: OutboxMessage) -> bytes:
    boundary = "c-" + uuid.uuid4().hex
    text = (
        f"From: feedback@fbl.example.net\r\nTo: {make_return_path(settings, mail.id)}\r\n"
        f"Subject: Complaint\r\nMessage-ID: <{uuid.uuid4().hex}@fbl.example.net>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: test-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {mail.to_address}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        f"{original_headers(settings, mail)}\r\nbody\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode()


def autoreply(mail: OutboxMessage, sender: str | None = None) -> bytes:
    body = "我目前休假中,將於下週一回到辦公室。"
    return (
        f"From: {sender or mail.to_address}\r\nTo: hep@twport.com.tw\r\n"
        f"Subject: =?utf-8?b?6Ieq5YuV5Zue6KaG?=\r\n"  # 自動回覆
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\nIn-Reply-To: {mail.message_id}\r\n"
        f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


def reply(sender: str, body: str, *, in_reply_to: str = "",
          subject: str = "Re: 通行證系統帳號註冊通知信件") -> bytes:
    refs = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    return (
        f"From: 王小明 <{sender}>\r\nTo: hep@twport.com.tw\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n{refs}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


# --- reading the results -------------------------------------------------------------------


def items(session: Session, kind: str | None = None) -> list[SupportItem]:
    query = select(SupportItem).order_by(SupportItem.id)
    if kind is not None:
        query = query.where(SupportItem.kind == kind)
    return list(session.execute(query).scalars())


def suppressed(session: Session, address: str) -> bool:
    return session.execute(select(func.count()).select_from(Suppression).where(
        Suppression.address_key == address.lower(), Suppression.lifted_at.is_(None))).scalar_one() > 0


def inbound_rows(session: Session) -> list[InboundMessage]:
    return list(session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars())
