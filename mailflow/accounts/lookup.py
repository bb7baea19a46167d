"""The account and application lookups, written once (issue 16 item 4).

Inbound routing and its consequences, support items, actions and pages, verification, registration of
shared accounts and self-service each asked the same questions with their own query: which live
account has this 帳號, which accounts have this address, whose mail was this, what is an account's
newest application. Each question is one function here; the callers keep only what is theirs to decide.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.mail import addresses
from mailflow.models import Account, Application, OutboxMessage


def live_account(session: Session, account_id: str) -> Account | None:
    """The live account whose 帳號 is ``account_id`` as typed (trimmed, case-insensitive); a rejected
    account's 帳號 is freed (its ``account_key`` is NULL), so it is never found here."""
    key = account_id.strip().lower()
    if not key:
        return None
    return session.scalar(select(Account).where(Account.account_key == key))


def accounts_with_address(session: Session, address: str) -> list[Account]:
    """Every account (live or not) whose address is ``address`` — compared by its key
    (mailflow.mail.addresses.key) — oldest first."""
    key = addresses.key(address or "")
    if not key:
        return []
    return list(session.scalars(select(Account).where(Account.email_key == key).order_by(Account.id)))


def account_by_address(session: Session, address: str) -> Account | None:
    """The newest account whose address is ``address`` (the one an applicant writing from it most
    likely means), or None."""
    key = addresses.key(address or "")
    if not key:
        return None
    return session.scalar(select(Account).where(Account.email_key == key).order_by(Account.id.desc())
                          .limit(1))


def account_of_mail(session: Session, mail: OutboxMessage | None) -> Account | None:
    """The account an outbox mail was queued for, if it was queued for one and the account exists."""
    if mail is None or mail.account_id is None:
        return None
    return session.get(Account, mail.account_id)


def latest_application(session: Session, account_id: int) -> Application | None:
    """An account's newest application (a rejected applicant may have registered again)."""
    return session.scalars(select(Application).where(Application.account_id == account_id)
                           .order_by(Application.id.desc()).limit(1)).first()


def latest_applications(session: Session, account_ids: Iterable[int]) -> dict[int, Application]:
    """latest_application for many accounts in one query: account id -> its newest application (accounts
    without one are left out)."""
    wanted = set(account_ids)
    found: dict[int, Application] = {}
    if not wanted:
        return found
    for app in session.scalars(select(Application).where(Application.account_id.in_(wanted))
                               .order_by(Application.id)):
        found[app.account_id] = app
    return found
