"""Notifications another system asks for: checking a request, sending it as an outbox row, answering
its status, and what dispatch and the bounce router tell us about it.

A notification is a mail like every other: ``mail.outbox.enqueue`` in the request's transaction, the same
dispatch, the same signed return path, the same bounce consequences (suppression, 'Email 無法送達', a
/support item). Sent to a 帳號, it goes to the address that account VERIFIED — never to an address it
changed to and has not verified yet.

Idempotency. ``Idempotency-Key`` is unique per API key (a unique index over both). A repeat within
IDEMPOTENCY_HOURS answers the first result when its body is the same and 409 when it differs. Two
identical requests racing both pass the first look-up; the index lets one insert and the other fails at
its INSERT (PostgreSQL makes it wait for the first to commit, SQLite's write lock does the same), rolls
back everything it wrote (its outbox row included) and answers from the row that won. A key older than
IDEMPOTENCY_HOURS is cleared when it is used again, so the same key then names a new request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.accounts.rules import check_field
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.mail.outbox import enqueue
from mailflow.models import Account, Notification, OutboxMessage, OutboxStatus
from mailflow.notify.apikeys import Caller
from mailflow.notify.events import emit_event, emit_events
from mailflow.notify.templates import ApiTemplate, api_templates, is_api_template, personalisation_errors
from mailflow.notify.writes import writer_turn
from mailflow.timeutil import iso_taipei, now

IDEMPOTENCY_HOURS = 24
FIELDS = ("template", "account", "email_address", "personalisation", "reference")
MAX_REFERENCE = 200
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces

# The statuses of the contract, from the outbox row and what came back from the recipient's side.
QUEUED, SENDING, SENT, DELAYED, BOUNCED, FAILED, SUPPRESSED = (
    "queued", "sending", "sent", "delivery-delayed", "bounced", "failed", "suppressed")
STATUSES = (QUEUED, SENDING, SENT, DELAYED, BOUNCED, FAILED, SUPPRESSED)
_FROM_OUTBOX: dict[str, str] = {
    OutboxStatus.QUEUED: QUEUED, OutboxStatus.RETRY: DELAYED, OutboxStatus.SENDING: SENDING,
    OutboxStatus.SENT: SENT, OutboxStatus.FAILED: FAILED, OutboxStatus.SUPPRESSED: SUPPRESSED}


class NotificationRefused(Exception):
    """A request that cannot be sent; ``body`` is the JSON answer."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _refuse(status: int, errors: dict[str, str]) -> NotificationRefused:
    return NotificationRefused(status, {"errors": errors})


@dataclass(frozen=True)
class NotificationRequest:
    template: ApiTemplate
    account: str | None
    email_address: str | None
    personalisation: dict[str, str]
    reference: str | None
    fingerprint: str  # of the whole body, to tell a repeat from a different request with the same key


def fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_request(body: Any) -> NotificationRequest:
    """The request when it is complete and fits its template, else NotificationRefused(422) naming
    every problem at once."""
    if not isinstance(body, dict):
        raise _refuse(422, {"request": "請以 JSON 物件送出 template、account 或 email_address 與 "
                                       "personalisation"})
    errors: dict[str, str] = {}
    for extra in sorted(set(body) - set(FIELDS)):
        errors[str(extra)[:60]] = "不支援的欄位"
    name = body.get("template")
    template = api_templates().get(name) if isinstance(name, str) else None
    if template is None:
        errors["template"] = "查無此範本,或此範本不開放 API 使用" if name else "請指定範本 template"
    account, address = body.get("account"), body.get("email_address")
    if (account is None) == (address is None):
        errors["account"] = "請指定 account 或 email_address 其中之一"
    elif account is not None and (not isinstance(account, str) or not account.strip()):
        errors["account"] = "帳號格式不正確"
    elif address is not None and not isinstance(address, str):
        errors["email_address"] = "Email格式不正確"
    reference = body.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > MAX_REFERENCE):
        errors["reference"] = f"reference 必須是最多 {MAX_REFERENCE} 字的字串"
    values = body.get("personalisation", {})
    if template is not None:
        errors.update(personalisation_errors(template, values))
    if errors:
        raise _refuse(422, errors)
    assert template is not None
    return NotificationRequest(template, account.strip() if account else None, address, dict(values),
                               reference, fingerprint(body))


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.match(value):
        raise _refuse(422, {"Idempotency-Key": "必須是 1 到 200 個可見的 ASCII 字元"})
    return value


@dataclass(frozen=True)
class Accepted:
    body: dict[str, Any]
    replayed: bool


def send(db: Database, settings: Settings, caller: Caller, request: NotificationRequest,
         idempotency_key: str | None) -> Accepted:
    """Queue the notification (or answer the earlier result of the same idempotency key)."""
    try:
        with db.session() as session:
            earlier, stale = _earlier(session, caller, idempotency_key, request)
            if earlier is not None:
                return earlier
            address, account = _recipient(session, request)
            with writer_turn(db):  # reads above, writes below: see mailflow.notify.writes
                if stale is not None:
                    session.execute(update(Notification).where(Notification.id == stale)
                                    .values(idempotency_key=None))
                created = _queue(session, settings, caller, request, idempotency_key, address, account)
                session.commit()
            return Accepted(_accepted_body(created, request.reference), False)
    except IntegrityError:
        # The same key committed by a concurrent request between our look-up and our insert.
        with db.session() as session:
            earlier, _stale = _earlier(session, caller, idempotency_key, request)
        if earlier is None:
            raise
        return earlier


def _accepted_body(notification_id: int, reference: str | None) -> dict[str, Any]:
    return {"id": notification_id, "status": QUEUED, "reference": reference}


# Every POST runs these: built once (see mailflow.notify.apikeys on why).
_NOTIFICATIONS = cast(Table, Notification.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
_BY_KEY = (select(_NOTIFICATIONS.c.id, _NOTIFICATIONS.c.reference, _NOTIFICATIONS.c.request_hash,
                  _NOTIFICATIONS.c.created_at)
           .where(_NOTIFICATIONS.c.api_key_id == bindparam("key_id"),
                  _NOTIFICATIONS.c.idempotency_key == bindparam("key")))
_ACCOUNT = (select(_ACCOUNTS.c.id, _ACCOUNTS.c.name, _ACCOUNTS.c.email_verified_at,
                   _ACCOUNTS.c.email_verified_address)
            .where(_ACCOUNTS.c.account_key == bindparam("account")))
_INSERT = insert(_NOTIFICATIONS).returning(_NOTIFICATIONS.c.id)


def _earlier(session: Session, caller: Caller, key: str | None,
             request: NotificationRequest) -> tuple[Accepted | None, int | None]:
    """The answer already given for ``key`` (or 409 for another body), else None; and the id of a
    notification holding the key for longer than IDEMPOTENCY_HOURS, whose key is to be cleared."""
    if key is None:
        return None, None
    row = session.execute(_BY_KEY, {"key_id": caller.key_id, "key": key}).first()
    if row is None:
        return None, None
    if row.created_at < now() - timedelta(hours=IDEMPOTENCY_HOURS):
        return None, row.id
    if row.request_hash != request.fingerprint:
        raise NotificationRefused(409, {"error": "此 Idempotency-Key 已用於內容不同的請求"})
    return Accepted(_accepted_body(row.id, row.reference), True), None


@dataclass(frozen=True)
class Recipient:
    """The 帳號 a notification goes to (by its verified address)."""

    id: int
    name: str


def _recipient(session: Session, request: NotificationRequest) -> tuple[str, Recipient | None]:
    if request.account is not None:
        account = session.execute(_ACCOUNT, {"account": request.account.lower()}).first()
        if account is None:
            raise _refuse(422, {"account": "查無此帳號"})
        verified = account.email_verified_address
        if account.email_verified_at is None or not verified:
            raise _refuse(422, {"account": "此帳號沒有已驗證的 Email,無法寄送"})
        return verified, Recipient(account.id, account.name)
    address, error = check_field("email", request.email_address)
    if error:
        raise _refuse(422, {"email_address": error})
    return address, None


def _queue(session: Session, settings: Settings, caller: Caller, request: NotificationRequest,
           key: str | None, address: str, account: Recipient | None) -> int:
    context = {**request.personalisation, "system_url": settings.mail.pass_system_url}
    mail = enqueue(session, request.template.name, address, message_id_domain=settings.mail.message_id_domain,
                   to_name=account.name if account is not None else "", context=context,
                   account_id=account.id if account is not None else None)
    if mail.status == OutboxStatus.SUPPRESSED:
        # enqueue looked the address up already; the caller learns it now, and the row is rolled back.
        raise NotificationRefused(409, {"error": "此 Email 地址在停止寄送名單中(曾退信或被檢舉),郵件不會寄出;"
                                                 "請洽客服確認"})
    session.flush()  # the outbox rows first (their foreign key)
    # The idempotency index decides here, before anything is committed.
    return int(session.execute(_INSERT, {
        "outbox_id": mail.id, "api_key_id": caller.key_id, "account_id": account.id if account else None,
        "template": request.template.name, "reference": request.reference, "idempotency_key": key,
        "request_hash": request.fingerprint, "created_at": mail.created_at}).scalar_one())


# --- status ----------------------------------------------------------------------------------------


def public_status(outbox_status: str, notification: Notification) -> str:
    if notification.bounced_at is not None:
        return BOUNCED
    if outbox_status == OutboxStatus.SENT and notification.delayed_at is not None:
        return DELAYED
    return _FROM_OUTBOX.get(outbox_status, outbox_status)


def status_condition(status: str) -> ColumnElement[bool]:
    """The SQL condition for ``status`` (one of STATUSES), the same mapping as public_status."""
    if status == BOUNCED:
        return Notification.bounced_at.is_not(None)
    outbox = OutboxMessage.status
    if status == DELAYED:
        shown = or_(outbox == OutboxStatus.RETRY,
                    and_(outbox == OutboxStatus.SENT, Notification.delayed_at.is_not(None)))
    elif status == SENT:
        shown = and_(outbox == OutboxStatus.SENT, Notification.delayed_at.is_(None))
    else:
        shown = outbox == {QUEUED: OutboxStatus.QUEUED, SENDING: OutboxStatus.SENDING}.get(status, status)
    return and_(Notification.bounced_at.is_(None), shown)


def describe(notification: Notification, mail: OutboxMessage) -> dict[str, Any]:
    bounce = None
    if notification.bounced_at is not None:
        bounce = {"hard": bool(notification.bounce_hard), "reason": notification.bounce_reason,
                  "status": notification.bounce_status or None}
    return {"id": notification.id, "status": public_status(mail.status, notification),
            "template": notification.template, "to": mail.to_address, "reference": notification.reference,
            "created_at": iso_taipei(notification.created_at), "sent_at": iso_taipei(mail.sent_at),
            "bounce": bounce}


def _with_mail() -> Select[Notification, OutboxMessage]:
    return select(Notification, OutboxMessage).join(OutboxMessage, OutboxMessage.id == Notification.outbox_id)


def get(session: Session, notification_id: int) -> dict[str, Any] | None:
    found = session.execute(_with_mail().where(Notification.id == notification_id)).first()
    return describe(found[0], found[1]) if found is not None else None


PAGE_DEFAULT, PAGE_MAX = 50, 250


def page(session: Session, *, after: int = 0, reference: str | None = None, status: str | None = None,
         limit: int = PAGE_DEFAULT) -> dict[str, Any]:
    """Notifications after id ``after``, oldest first; ``next`` is the ``after`` of the following page
    (null on the last one)."""
    query = (_with_mail().where(Notification.id > after).order_by(Notification.id).limit(limit + 1))
    if reference is not None:
        query = query.where(Notification.reference == reference)
    if status is not None:
        query = query.where(status_condition(status))
    rows = session.execute(query).all()
    shown = rows[:limit]
    more = len(rows) > limit
    return {"notifications": [describe(n, m) for n, m in shown],
            "next": str(shown[-1][0].id) if more and shown else None}


# --- what dispatch and the bounce router report --------------------------------------------------


def _event_data(notification: Notification, to_address: str, status: str,
                account: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": notification.id, "reference": notification.reference,
                            "template": notification.template, "to": to_address, "status": status,
                            "account": account}
    if status == BOUNCED:
        data["bounce"] = {"hard": bool(notification.bounce_hard), "reason": notification.bounce_reason,
                          "status": notification.bounce_status or None}
    return data


_OUTCOME_EVENTS: dict[str, str] = {OutboxStatus.SENT: "notification.sent",
                                   OutboxStatus.FAILED: "notification.failed"}


def record_outcomes(session: Session, settled: Sequence[tuple[str, int, str]]) -> int:
    """Dispatch recorded these results (template, outbox id, new status) in ``session``: the sent and
    failed ones that are notifications get their events in the same transaction. Mails of templates
    the API cannot use are passed over without a query."""
    wanted = {outbox_id: status for template, outbox_id, status in settled
              if status in _OUTCOME_EVENTS and is_api_template(template)}
    if not wanted:
        return 0
    rows = session.execute(
        select(Notification, OutboxMessage.to_address, Account.account)
        .join(OutboxMessage, OutboxMessage.id == Notification.outbox_id)
        .outerjoin(Account, Account.id == Notification.account_id)
        .where(Notification.outbox_id.in_(list(wanted))).order_by(Notification.id)
    ).all()
    return emit_events(session, [
        (_OUTCOME_EVENTS[wanted[n.outbox_id]], n.account_id,
         _event_data(n, to_address, _FROM_OUTBOX[wanted[n.outbox_id]], account))
        for n, to_address, account in rows
    ])


def bounce_seen(session: Session, mail: OutboxMessage, action: str, hard: bool, reason: str, status: str,
                *, proven: bool) -> None:
    """The bounce router tied a failed recipient to ``mail``. When the bounce proved it (signed tag or
    our Message-ID: mailflow.inbound.correlate) and the mail is a notification, its status shows it and, the
    first time, ``notification.bounced`` is emitted. A delay notice only marks it delivery-delayed."""
    if not proven:
        return
    notification = session.scalars(select(Notification).where(Notification.outbox_id == mail.id)).first()
    if notification is None or notification.bounced_at is not None:
        return
    if action == "delayed":
        notification.delayed_at = notification.delayed_at or now()
        return
    notification.bounced_at = now()
    notification.bounce_hard = hard
    notification.bounce_reason = (reason or "undefined")[:40]
    notification.bounce_status = (status or "")[:12]
    account = session.get(Account, notification.account_id) if notification.account_id else None
    emit_event(session, "notification.bounced", notification.account_id,
               _event_data(notification, mail.to_address, BOUNCED, account.account if account else None))
