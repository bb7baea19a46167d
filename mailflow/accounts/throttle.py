"""Login throttling: failed attempts are rows in ``login_attempts`` keyed by what was tried (an account
from a client address, a staff name, a client address), so every worker sees the same count. Used by the
applicant login, the staff login and the verification-mail request form.

The applicant login counts each failure twice: once for the (account, client address) pair, with a small
limit that stops guessing one account's password, and once for the client address alone, with a much
larger limit that stops spraying a common password across many accounts. A whole office behind one NAT
shares an address, so a few colleagues mistyping their passwords must not lock everyone else out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailflow.models import LoginAttempt
from mailflow.timeutil import now

WINDOW = timedelta(minutes=15)
# Wrong passwords for one account from one client address per window: plenty for a person who forgot
# which password they used, far too few to guess one.
MAX_FAILURES = 10
# Wrong passwords from one client address per window, whatever accounts they name: ten people behind one
# NAT can each use up their own tries, yet a sprayer trying one password on many accounts stops at 100.
CLIENT_LIMIT = 100


def account_key(account: str) -> str:
    return f"account:{account.strip().lower()}"


def client_key(address: str | None) -> str:
    return f"client:{address or 'unknown'}"


def account_client_key(account: str, address: str | None) -> str:
    """One account name tried from one client address; the address comes first so that the 200-character
    cut of a very long account name never merges two addresses."""
    return f"{client_key(address)}|{account_key(account)}"


def staff_key(name: str) -> str:
    return f"staff:{name.strip().lower()}"


def default_limit(key: str) -> int:
    """A client address alone gets the large spraying limit, anything narrower the small one."""
    return CLIENT_LIMIT if key.startswith("client:") and "|" not in key else MAX_FAILURES


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


def is_throttled(session: Session, keys: Iterable[str], limit: int | None = None,
                 window: timedelta = WINDOW) -> bool:
    """True when any of ``keys`` has its limit (``limit``, else ``default_limit``) or more failures within
    ``window``."""
    return any(failures(session, key, window) >= (default_limit(key) if limit is None else limit)
               for key in keys)


def retry_after(session: Session, key: str, limit: int, window: timedelta = WINDOW) -> int | None:
    """Seconds until ``key`` is below ``limit`` failures again, or None when it is not throttled now:
    that happens when the limit-th newest failure leaves the window."""
    moment = now()
    pivot = session.scalar(
        select(LoginAttempt.at).where(LoginAttempt.key == key[:200], LoginAttempt.at >= moment - window)
        .order_by(LoginAttempt.at.desc()).offset(limit - 1).limit(1)
    )
    if pivot is None:
        return None
    return max(1, math.ceil((pivot + window - moment).total_seconds()))


def login_retry_after(session: Session, account: str, address: str | None) -> int | None:
    """For the applicant login: seconds to wait before this account may be tried from this address, or
    None when it may be tried now."""
    waits = [retry_after(session, account_client_key(account, address), MAX_FAILURES),
             retry_after(session, client_key(address), CLIENT_LIMIT)]
    found = [wait for wait in waits if wait is not None]
    return max(found) if found else None


def record_login_failure(session: Session, account: str, address: str | None) -> None:
    record_failure(session, account_client_key(account, address), client_key(address))


def clear_login_failures(session: Session, account: str, address: str | None) -> None:
    """A successful login forgives that account's earlier failures from this address, never the
    address's own count."""
    clear(session, account_client_key(account, address))


def clear(session: Session, key: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key[:200]))


def prune(session: Session, older_than: timedelta = timedelta(days=1)) -> int:
    """Drop attempts no window looks at any more; returns how many."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.at < now() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
