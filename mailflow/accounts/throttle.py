"""Login throttling: failed attempts are rows in ``login_attempts`` keyed by what was tried (an account,
a staff name, a client address), so every worker sees the same count. Used by the applicant login, the
staff login and the verification-mail request form."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailflow.models import LoginAttempt
from mailflow.timeutil import now

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10


def account_key(account: str) -> str:
    return f"account:{account.strip().lower()}"


def client_key(address: str | None) -> str:
    return f"client:{address or 'unknown'}"


def staff_key(name: str) -> str:
    return f"staff:{name.strip().lower()}"


def record_failure(session: Session, *keys: str) -> None:
    moment = now()
    for key in keys:
        session.add(LoginAttempt(key=key[:200], at=moment))
    session.flush()


def failures(session: Session, key: str, window: timedelta = WINDOW) -> int:
    since = now() - window
    count = session.scalar(
        select(func.count(LoginAttempt.id)).where(LoginAttempt.key == key[:200], LoginAttempt.at >= since)
    )
    return int(count or 0)


def is_throttled(session: Session, keys: Iterable[str], limit: int = MAX_FAILURES,
                 window: timedelta = WINDOW) -> bool:
    """True when any of ``keys`` has ``limit`` or more failures within ``window``."""
    return any(failures(session, key, window) >= limit for key in keys)


def clear(session: Session, key: str) -> None:
    """A successful login forgives that account's earlier failures (never the client address's)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key[:200]))


def prune(session: Session, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop attempts no window looks at any more; returns how many."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.at < now() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
