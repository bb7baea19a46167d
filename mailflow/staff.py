"""Staff logins for /review and /support (issue 16 item 4): the rules of a staff name and password, adding
one, a new password, the list, roles, ending sessions, and signing in under the login limits. The web's
sign-in (mailflow.web.staff_auth) and `mailflow staff` (mailflow.commands.staff) only translate: a form or
the command line in, a page, a cookie or a printed line out.

Signing in is limited by mailflow.accounts.throttle — per client address (30 in 15 minutes), per name and
address (10), and per name from anywhere a wait that grows after 20 failures (30 s doubling up to 15 min):
the attacker is slowed, the name is never locked for good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.accounts import throttle
from mailflow.db import Database
from mailflow.models import StaffRole, StaffUser
from mailflow.notify.writes import writer_turn
from mailflow.passwords import hash_password
from mailflow.timeutil import iso_taipei

MIN_PASSWORD = 10
MAX_NAME = 60


class StaffRefused(Exception):
    """Why `mailflow staff` cannot do it (English: an operator reads it on the command line)."""


def name_problem(name: str) -> str | None:
    """What is wrong with a new staff name, or None."""
    if not name or len(name) > MAX_NAME or any(ch.isspace() for ch in name):
        return f"NAME must be 1-{MAX_NAME} characters without spaces"
    return None


def password_problem(password: str) -> str | None:
    """What is wrong with a new staff password, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    return None


def find(session: Session, name: str) -> StaffUser | None:
    """The staff login with this name, compared without case."""
    return session.scalar(select(StaffUser).where(func.lower(StaffUser.name) == name.strip().lower()))


def add(session: Session, name: str, role: str, password: str) -> StaffUser:
    """A new staff login (the caller commits); raises StaffRefused when the name is taken."""
    if find(session, name) is not None:
        raise StaffRefused(f"staff {name!r} already exists")
    staff = StaffUser(name=name, role=role, password_hash=hash_password(password))
    session.add(staff)
    return staff


def end_sessions(staff: StaffUser) -> None:
    """Every session of ``staff`` stops working, on every device, kept cookies included (issue 13
    finding 5). The caller commits."""
    staff.session_generation += 1


def set_password(session: Session, name: str, password: str) -> StaffUser:
    """A new password for a staff login; every session of that person ends. Raises StaffRefused when no
    such login exists."""
    staff = find(session, name)
    if staff is None:
        raise StaffRefused(f"no staff {name!r}")
    staff.password_hash = hash_password(password)
    end_sessions(staff)
    return staff


def listing(session: Session) -> list[dict[str, Any]]:
    """Every staff login by name: name, role, disabled, locked_until (ISO, Taipei: before then no password
    try for the name is judged, after a streak of wrong ones — mailflow.accounts.throttle's delay; null
    when a try may come now)."""
    rows = session.scalars(select(StaffUser).order_by(StaffUser.name)).all()
    waits = throttle.waits(session, [throttle.staff_key(s.name) for s in rows])
    return [{"name": s.name, "role": s.role, "disabled": s.disabled,
             "locked_until": iso_taipei(waits.get(throttle.staff_key(s.name)))} for s in rows]


def has_role(staff: StaffUser, roles: tuple[str, ...]) -> bool:
    """Whether ``staff`` may use something open to ``roles`` (any role when empty; admin passes all)."""
    return not roles or staff.role == StaffRole.ADMIN or staff.role in roles


@dataclass
class LoginOutcome:
    staff: StaffUser | None
    status: int
    message: str
    retry_after: int | None = None


def authenticate(db: Database, name: str, password: str, client: str | None) -> LoginOutcome:
    """Check a staff name and password under the login limits (the module docstring). Each step commits
    its own short transaction; none is open during the password check."""

    def prepare(session: Session) -> tuple[int | None, throttle.Reservation, str | None]:
        reservation = throttle.reserve_staff(session, name, client)
        staff = find(session, name)
        if staff is None or staff.disabled:
            return None, reservation, None
        return staff.id, reservation, staff.password_hash

    try:
        found, reservation, ok = throttle.check(db, prepare, password)
    except throttle.Throttled as exc:
        return LoginOutcome(None, 429, f"嘗試次數過多,請 {throttle.minutes(exc.retry_after)} 分鐘後再試。",
                            exc.retry_after)
    if not ok or found is None:
        return LoginOutcome(None, 401, "帳號或密碼錯誤。")
    with writer_turn(db), db.session() as session:
        throttle.give_back(session, reservation)
        staff = session.get(StaffUser, found)
        if staff is None or staff.disabled:
            return LoginOutcome(None, 401, "帳號或密碼錯誤。")
        return LoginOutcome(staff, 200, "")
