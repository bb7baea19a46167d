"""Opening customer-service items: one open item per kind, account and mail, however often the same
thing happens again (a second bounce of the same mail, a second reply) — staff see it once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.accounts.lookup import account_by_address
from mailflow.models import InboundMessage, OutboxMessage, SupportItem, SupportKind, SupportNote
from mailflow.timeutil import taipei

# An auto-reply (a vacation notice) from an applicant: low priority, one open item per account however
# many arrive; each later one is a note, so several in a row (an unattended mailbox) show on one item.
# The kind column is a plain string, so this kind needs no schema change.
AUTOREPLY = SupportKind.AUTOREPLY
KINDS = tuple(SupportKind)

_FIELDS = ("account_id", "application_id", "outbox_id", "inbound_id", "address", "reason", "diagnostic",
           "summary", "sender_auth")
_LIMITS = {"address": 320, "reason": 40}


def find_open_item(session: Session, kind: str, account_id: int | None, outbox_id: int | None,
                   address: str = "") -> SupportItem | None:
    query = select(SupportItem).where(SupportItem.kind == kind, SupportItem.resolved_at.is_(None))
    query = query.where(SupportItem.account_id.is_(None) if account_id is None
                        else SupportItem.account_id == account_id)
    query = query.where(SupportItem.outbox_id.is_(None) if outbox_id is None
                        else SupportItem.outbox_id == outbox_id)
    if account_id is None and outbox_id is None:
        # Nothing to tie it to but the address: an unknown sender's second mail is the same matter.
        query = query.where(SupportItem.address == address)
    return session.execute(query.order_by(SupportItem.id).limit(1)).scalar_one_or_none()


def open_item(session: Session, kind: str, *, actor: str = "system", **fields: Any) -> SupportItem:
    """Open a support item of ``kind`` (a SupportKind) with the given columns, or return the open item
    already there for the same account and mail. Works in the caller's transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown support item kind {kind!r}")
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"open_item: unknown fields {sorted(unknown)}")
    values = {name: _clip(name, value) for name, value in fields.items() if value is not None}
    existing = find_open_item(session, kind, values.get("account_id"), values.get("outbox_id"),
                              values.get("address", ""))
    if existing is not None:
        return existing
    item = SupportItem(kind=kind, **values)
    session.add(item)
    session.flush()
    audit.record(session, actor, "support_item_opened", "support_item", item.id, kind=kind,
                 account_id=item.account_id, outbox_id=item.outbox_id, inbound_id=item.inbound_id)
    return item


def note_autoreply(session: Session, row: InboundMessage, mail: OutboxMessage | None) -> SupportItem | None:
    """Show customer service an auto-reply from an applicant: open the account's autoreply item, or add a
    note to the one already open. None when the sender is no applicant (nobody to call about it).
    Works in the caller's transaction; called from mailflow.inbound.consequences.on_autoreply."""
    account_id = row.account_id or (mail.account_id if mail is not None else None)
    if account_id is None:
        sender = account_by_address(session, row.from_address)
        account_id = sender.id if sender is not None else None
    if account_id is None:
        return None
    if row.account_id is None:
        row.account_id = account_id  # so the applicant's page lists it among its auto-replies
    received = f"{taipei(row.received_at):%Y-%m-%d %H:%M}"
    line = f"{received} 自動回覆:{row.subject or '(無主旨)'}"
    existing = find_open_item(session, AUTOREPLY, account_id, None)
    if existing is not None:
        session.add(SupportNote(item_id=existing.id, author="system", text=line))
        audit.record(session, "system", "support_item_noted", "support_item", existing.id, inbound_id=row.id)
        return existing
    return open_item(session, AUTOREPLY, account_id=account_id, inbound_id=row.id,
                     outbox_id=None, address=row.from_address,
                     application_id=mail.application_id if mail is not None else None, summary=line)


def _clip(name: str, value: Any) -> Any:
    limit = _LIMITS.get(name)
    if limit is not None and isinstance(value, str):
        return value[:limit]
    return value
