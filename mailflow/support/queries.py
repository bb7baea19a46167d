"""The customer-service dashboard's reads: filtering, searching and keyset-paging support items, the
applicant and mail behind each item, per-kind counts, per-day activity for the chart and the digest.

Paging is keyset on (created_at, id) newest first, so page 2,000 costs what page 1 costs; the open
list walks ix_support_open and a kind filter walks ix_support_kind.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from mailflow.accounts.lookup import latest_application, latest_applications
from mailflow.mail import addresses
from mailflow.models import (
    Account,
    Application,
    AuditEvent,
    BounceRecipient,
    InboundMessage,
    OutboxEvent,
    OutboxMessage,
    OutboxStatus,
    SupportItem,
    SupportKind,
    SupportNote,
    Suppression,
)
from mailflow.support.items import KINDS
from mailflow.support.reasons_zh import item_sentence, kind_title, mail_title, sender_auth_label
from mailflow.timeutil import TAIPEI, taipei

STATES = ("open", "resolved", "all")
PAGE_SIZE = 50
COUNT_CAP = 1000
MAX_QUERY_CHARS = 320


@dataclass(frozen=True)
class ItemFilter:
    """What the dashboard, the CSV export and the digest ask for. Dates are Taipei calendar days."""

    kind: str = ""
    state: str = "open"
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    def as_params(self) -> dict[str, str]:
        """The query-string form, for links that keep the current filter."""
        params = {"kind": self.kind, "state": self.state, "q": self.q,
                  "from": self.date_from.isoformat() if self.date_from else "",
                  "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in params.items() if v and not (k == "state" and v == "open")}


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_filter(params: Mapping[str, str]) -> tuple[ItemFilter, dict[str, str]]:
    """Read a filter from query parameters; a bad value is dropped and named in zh-TW errors."""
    errors: dict[str, str] = {}
    kind = (params.get("kind") or "").strip()
    if kind and kind not in KINDS:
        errors["kind"] = "不明的項目類別"
        kind = ""
    state = (params.get("state") or "open").strip()
    if state not in STATES:
        errors["state"] = "狀態只能是未處理、已處理或全部"
        state = "open"
    days: dict[str, date | None] = {}
    for key in ("from", "to"):
        text = (params.get(key) or "").strip()
        days[key] = _parse_day(text) if text else None
        if text and days[key] is None:
            errors[key] = "日期格式應為 YYYY-MM-DD"
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = "迄日不可早於起日"
        days["to"] = None
    q = (params.get("q") or "").strip()
    if len(q) > MAX_QUERY_CHARS:
        errors["q"] = "搜尋文字太長"
        q = ""
    return ItemFilter(kind, state, days["from"], days["to"], q), errors


def day_start_utc(day: date) -> datetime:
    """The first instant of a Taipei calendar day, in UTC."""
    return datetime.combine(day, time.min, tzinfo=TAIPEI).astimezone(UTC)


def _search_condition(q: str) -> ColumnElement[bool]:
    """Account id, 統編 or mail address: exact or prefix on the indexed account columns."""
    needle = addresses.key(q)  # an address typed as ｘ.tw or 例え.jp finds its stored ASCII form
    by_account = select(Account.id).where(or_(
        Account.account_key.startswith(needle, autoescape=True),
        Account.email_key.startswith(needle, autoescape=True),
        Account.name == q,
    ))
    by_company = select(Application.account_id).where(or_(Application.ubn == q, Application.ubn_key == q))
    return or_(
        SupportItem.account_id.in_(by_account),
        SupportItem.account_id.in_(by_company),
        func.lower(SupportItem.address) == needle,
    )


def conditions(flt: ItemFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.state == "open":
        where.append(SupportItem.resolved_at.is_(None))
    elif flt.state == "resolved":
        where.append(SupportItem.resolved_at.is_not(None))
    if flt.kind:
        where.append(SupportItem.kind == flt.kind)
    if flt.date_from:
        where.append(SupportItem.created_at >= day_start_utc(flt.date_from))
    if flt.date_to:
        where.append(SupportItem.created_at < day_start_utc(flt.date_to + timedelta(days=1)))
    if flt.q:
        where.append(_search_condition(flt.q))
    return where


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last item's (created_at, id). Opaque in URLs."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.created_at.timestamp() * 1_000_000)
        return base64.urlsafe_b64encode(f"{micros}.{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """None for anything that is not a cursor we made (a hand-edited URL starts from page 1)."""
        if not text or len(text) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            micros, ident = raw.split(".")
            moment = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
            return cls(moment, int(ident))
        except (ValueError, UnicodeDecodeError, OverflowError, OSError):
            return None


def _after(cursor: Cursor) -> ColumnElement[bool]:
    return or_(SupportItem.created_at < cursor.created_at,
               and_(SupportItem.created_at == cursor.created_at, SupportItem.id < cursor.id))


def items_query(flt: ItemFilter, after: Cursor | None = None) -> Select[SupportItem]:
    stmt = select(SupportItem).where(*conditions(flt))
    if after is not None:
        stmt = stmt.where(_after(after))
    return stmt.order_by(SupportItem.created_at.desc(), SupportItem.id.desc())


@dataclass
class ItemPage:
    items: list[SupportItem]
    next_cursor: Cursor | None


def page_items(session: Session, flt: ItemFilter, after: Cursor | None = None,
               limit: int = PAGE_SIZE) -> ItemPage:
    """One page, newest first; one extra row tells whether a next page exists."""
    rows = list(session.scalars(items_query(flt, after).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return ItemPage(rows, Cursor(last.created_at, last.id) if last else None)


def iter_items(session: Session, flt: ItemFilter, batch: int = 1000) -> Iterator[SupportItem]:
    """Every matching item, newest first, in keyset batches (the CSV export of 100,000 rows)."""
    after: Cursor | None = None
    while True:
        page = page_items(session, flt, after, batch)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def count_items(session: Session, flt: ItemFilter) -> int:
    return int(session.scalar(select(func.count(SupportItem.id)).where(*conditions(flt))) or 0)


def open_counts_by_kind(session: Session, cap: int = COUNT_CAP) -> dict[str, int]:
    """Open items per kind, counted up to ``cap`` (shown as "1000+"): each count walks ix_support_kind
    and stops at the cap, where one GROUP BY over 100,000 open items took a tenth of a second."""
    counts: dict[str, int] = {}
    for kind in KINDS:
        capped = (select(SupportItem.id).where(SupportItem.kind == kind, SupportItem.resolved_at.is_(None))
                  .limit(cap).subquery())
        counts[kind] = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    return counts


def local_text(moment: datetime | None) -> str:
    return taipei(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


@dataclass
class ItemView:
    """An item with the applicant, company and mail behind it, ready for a page, a CSV row or a digest."""

    item: SupportItem
    account: Account | None = None
    application: Application | None = None
    mail: OutboxMessage | None = None

    @property
    def address(self) -> str:
        return self.item.address or (self.account.email if self.account else "")

    @property
    def reason_text(self) -> str:
        return item_sentence(self.item.kind, self.item.reason)

    @property
    def mail_title(self) -> str:
        return mail_title(self.mail.template) if self.mail else ""

    @property
    def sender_auth_label(self) -> str:
        """'寄件者未經驗證' and the like on items opened by a person's mail; '' on the others."""
        return sender_auth_label(self.item.sender_auth) if self.item.sender_auth else ""

    @property
    def sender_unproven(self) -> bool:
        """A mail whose sender is not proven: anything it asks (change the Email) needs a phone call."""
        return self.item.sender_auth is not None and self.item.sender_auth != "pass"

    @property
    def mail_time(self) -> str:
        if self.mail is None:
            return ""
        return local_text(self.mail.sent_at or self.mail.created_at)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields (the digest's context is stored in the outbox row)."""
        item, acc, app = self.item, self.account, self.application
        return {
            "id": item.id, "kind": item.kind, "kind_title": kind_title(item.kind),
            "created_at": local_text(item.created_at),
            "account": acc.account if acc else "", "name": acc.name if acc else "",
            "mobile": acc.mobile if acc else "",
            "company_name": app.company_name if app else "", "ubn": app.ubn if app else "",
            "address": self.address, "mail": self.mail_title,
            "mail_template": self.mail.template if self.mail else "",
            "mail_time": self.mail_time, "reason": item.reason, "reason_text": self.reason_text,
            "diagnostic": item.diagnostic, "summary": item.summary, "inbound_id": item.inbound_id,
            "assigned_to": item.assigned_to or "", "resolved_at": local_text(item.resolved_at),
            "resolved_by": item.resolved_by or "", "sender_auth": self.sender_auth_label,
        }


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def item_views(session: Session, items: list[SupportItem]) -> list[ItemView]:
    """Load what each item refers to with one query per table, not one per item."""
    accounts = _by_id(session, Account, {i.account_id for i in items if i.account_id})
    named = _by_id(session, Application, {i.application_id for i in items if i.application_id})
    unnamed = {i.account_id for i in items if i.account_id and not i.application_id}
    latest = latest_applications(session, unnamed)
    mails = _by_id(session, OutboxMessage, {i.outbox_id for i in items if i.outbox_id})
    views = []
    for item in items:
        app = named.get(item.application_id) if item.application_id else latest.get(item.account_id or 0)
        views.append(ItemView(item, accounts.get(item.account_id or 0), app, mails.get(item.outbox_id or 0)))
    return views


@dataclass
class DayActivity:
    day: date
    sent: int = 0
    bounced: int = 0
    replied: int = 0


def _bucket(moments: Any, start: date, days: int) -> list[int]:
    counts = [0] * days
    for (moment,) in moments:
        index = (taipei(moment).date() - start).days
        if 0 <= index < days:
            counts[index] += 1
    return counts


def daily_activity(session: Session, last_day: date, days: int = 30) -> list[DayActivity]:
    """Mails sent, bounced and replied per Taipei day, ``days`` days ending with ``last_day``.
    Timestamps are bucketed here because a calendar day in Taipei has no portable SQL spelling."""
    start = last_day - timedelta(days=days - 1)
    lo, hi = day_start_utc(start), day_start_utc(last_day + timedelta(days=1))
    sent = _bucket(session.execute(select(OutboxMessage.sent_at).where(
        OutboxMessage.sent_at >= lo, OutboxMessage.sent_at < hi)), start, days)
    bounced = _bucket(session.execute(
        select(InboundMessage.received_at)
        .join(BounceRecipient, BounceRecipient.inbound_id == InboundMessage.id)
        .where(InboundMessage.received_at >= lo, InboundMessage.received_at < hi,
               BounceRecipient.action == "failed", InboundMessage.forged.is_(False))), start, days)
    replied = _bucket(session.execute(select(InboundMessage.received_at).where(
        InboundMessage.received_at >= lo, InboundMessage.received_at < hi, InboundMessage.kind == "reply")),
        start, days)
    return [DayActivity(start + timedelta(days=i), sent[i], bounced[i], replied[i]) for i in range(days)]


@dataclass
class DayCounts:
    """Yesterday's numbers for the digest."""

    sent: int = 0
    failed: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    complaints: int = 0
    replies: int = 0
    new_applications: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "bounced_hard": self.bounced_hard,
                "bounced_soft": self.bounced_soft, "complaints": self.complaints, "replies": self.replies,
                "new_applications": self.new_applications, **self.extra}


def _count(session: Session, stmt: Select[Any]) -> int:
    return int(session.scalar(stmt) or 0)


def day_counts(session: Session, day: date) -> DayCounts:
    lo, hi = day_start_utc(day), day_start_utc(day + timedelta(days=1))
    inbound_day = and_(InboundMessage.received_at >= lo, InboundMessage.received_at < hi,
                       InboundMessage.forged.is_(False))
    bounces = select(func.count(BounceRecipient.id)).join(
        InboundMessage, BounceRecipient.inbound_id == InboundMessage.id).where(inbound_day)
    return DayCounts(
        sent=_count(session, select(func.count(OutboxMessage.id)).where(
            OutboxMessage.sent_at >= lo, OutboxMessage.sent_at < hi)),
        failed=_count(session, select(func.count(OutboxEvent.id)).where(
            OutboxEvent.at >= lo, OutboxEvent.at < hi, OutboxEvent.to_status == OutboxStatus.FAILED)),
        bounced_hard=_count(session, bounces.where(BounceRecipient.hard.is_(True))),
        bounced_soft=_count(session, bounces.where(BounceRecipient.hard.is_(False))),
        complaints=_count(session, select(func.count(InboundMessage.id)).where(
            inbound_day, InboundMessage.kind == "complaint")),
        replies=_count(session, select(func.count(InboundMessage.id)).where(
            inbound_day, InboundMessage.kind == "reply")),
        new_applications=_count(session, select(func.count(Application.id)).where(
            Application.submitted_at >= lo, Application.submitted_at < hi)),
    )


# The worst first: a mail that bounced for good outranks one that bounced once and was delayed before.
_BOUNCE_RANK = {"delayed": 0, "soft": 1, "bounced": 2}


def bounce_outcomes(session: Session, mails: list[OutboxMessage]) -> dict[int, str]:
    """What bounces say about these mails, by mail id: "bounced" (permanently), "unproven" (a permanent
    bounce that named only the address and proved nothing, see mailflow.inbound.route, while the address
    is not suppressed), "soft" or "delayed"; mails no bounce names are left out. Forged reports count
    for nothing."""
    ids = [mail.id for mail in mails]
    if not ids:
        return {}
    rows = session.execute(
        select(BounceRecipient.outbox_id, BounceRecipient.hard, BounceRecipient.action)
        .join(InboundMessage, InboundMessage.id == BounceRecipient.inbound_id)
        .where(BounceRecipient.outbox_id.in_(ids), InboundMessage.forged.is_(False))
    )
    outcomes: dict[int, str] = {}
    for outbox_id, hard, action in rows:
        state = "delayed" if action != "failed" else "bounced" if hard else "soft"
        if outbox_id is not None and _BOUNCE_RANK[state] >= _BOUNCE_RANK.get(outcomes.get(outbox_id, ""), -1):
            outcomes[outbox_id] = state
    unproven = set(session.scalars(select(AuditEvent.target_id).where(
        AuditEvent.action == "report_unproven", AuditEvent.target_type == "outbox",
        AuditEvent.target_id.in_(ids))))
    suppressed = set(session.scalars(select(Suppression.address_key).where(
        Suppression.address_key.in_({mail.to_key for mail in mails}), Suppression.lifted_at.is_(None))))
    to_key = {mail.id: mail.to_key for mail in mails}
    return {mail_id: "unproven" if state == "bounced" and mail_id in unproven and to_key[mail_id] not in
            suppressed else state for mail_id, state in outcomes.items()}


# --- one item's and one applicant's pages -------------------------------------------------------------


@dataclass
class AccountPanel:
    """What customer service sees of one applicant: the company, the latest mails and what bounces say
    of them, whether the address is suppressed, the applicant's items and auto-replies."""

    account: Account
    application: Application | None
    mails: list[OutboxMessage]
    suppressed: list[Suppression]
    bounces: dict[int, str]
    autoreplies: list[InboundMessage]
    account_items: list[SupportItem]


def account_panel(session: Session, account: Account) -> AccountPanel:
    application = latest_application(session, account.id)
    mails = list(session.scalars(select(OutboxMessage).where(OutboxMessage.account_id == account.id)
                                 .order_by(OutboxMessage.id.desc()).limit(30)))
    suppressed = list(session.scalars(select(Suppression).where(
        Suppression.address_key == account.email_key, Suppression.lifted_at.is_(None))))
    items = list(session.scalars(select(SupportItem).where(SupportItem.account_id == account.id)
                                 .order_by(SupportItem.id.desc()).limit(50)))
    autoreplies = list(session.scalars(select(InboundMessage).where(
        InboundMessage.account_id == account.id, InboundMessage.kind == SupportKind.AUTOREPLY)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(20)))
    return AccountPanel(account, application, mails, suppressed, bounce_outcomes(session, mails), autoreplies,
                        items)


def item_notes(session: Session, item: SupportItem) -> list[SupportNote]:
    return list(session.scalars(select(SupportNote).where(SupportNote.item_id == item.id)
                                .order_by(SupportNote.id)))


def audit_trail(session: Session, item: SupportItem | None, account: Account | None) -> list[AuditEvent]:
    """The newest 100 audit events about the item and the applicant."""
    targets = []
    if item is not None:
        targets.append((AuditEvent.target_type == "support_item") & (AuditEvent.target_id == item.id))
    if account is not None:
        targets.append((AuditEvent.target_type == "account") & (AuditEvent.target_id == account.id))
    if not targets:
        return []
    query = select(AuditEvent).where(or_(*targets)).order_by(AuditEvent.id.desc()).limit(100)
    return list(session.scalars(query))


def failed_elsewhere(session: Session, item: SupportItem, view: ItemView) -> list[BounceRecipient]:
    """The bounce's failed recipients whose address is not the applicant's: a mail the applicant's
    mailbox forwarded on bounced at the forward target, and staff must see which address failed."""
    if item.inbound_id is None:
        return []
    own = {a.strip().lower() for a in (view.address, view.account.email if view.account else "") if a}
    rows = session.scalars(select(BounceRecipient).where(BounceRecipient.inbound_id == item.inbound_id,
                                                         BounceRecipient.action == "failed")
                           .order_by(BounceRecipient.id))
    return [r for r in rows if r.address.strip().lower() not in own]
