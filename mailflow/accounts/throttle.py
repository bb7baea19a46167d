"""Password-guessing limits, for every place a password is checked: the applicant login
(POST /api/session, /account/login), the verification link (POST /verify/{token}), the new-verification-mail
form and the staff login. Every counter is a row of ``rate_counters`` moved by guarded UPDATEs
(mailflow.ratelimit), so the limits hold across workers and under concurrency on SQLite and PostgreSQL.

An attempt is **reserved before the password is checked** (argon2 takes 20 ms and more: checking first
and counting afterwards let 14 parallel wrong tries through a limit of 10), in a short transaction of
its own that is committed before the check; a right password gives the reservation back.

Three limits (issue 13 findings 3, 4 and 13: lock the attacker, not the account):

- per client address and account name: ``PAIR_LIMIT`` (10) tries per 15-minute window — a person who
  forgot which password they used has plenty, a guesser from one address stops;
- per client address, whatever names it tries: ``CLIENT_LIMIT`` (100; staff 30) per window — stops
  spraying one password over many accounts, while ten colleagues behind one NAT each keep their own tries;
- per account, from anywhere (Keycloak's brute-force detection: quick failures, then a wait that grows):
  the first ``FREE_FAILURES`` (20) wrong passwords cost nothing more; after that each wrong password makes
  the next try of that account wait ``FIRST_WAIT`` (30 s), doubling with every further failure up to
  ``MAX_WAIT`` (15 min); a right password or ``RESET_AFTER`` (12 h) without a failure starts afresh. An
  attacker with many addresses gets about 100 tries a day, and a stranger can keep the holder out for at
  most 15 minutes after their last wrong try — never for good (the old staff lockout locked any name
  for 15 minutes after 5 wrong tries from anywhere).

Which client address counts: the TCP peer's, as uvicorn reports it. Behind a reverse proxy, uvicorn's
``--forwarded-allow-ips`` (default: none trusted beyond 127.0.0.1) decides whether X-Forwarded-For is
believed; mailflow trusts no header of its own (docs/DEPLOY.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailflow import ratelimit
from mailflow.db import Database
from mailflow.models import RateCounter
from mailflow.notify.writes import writer_turn
from mailflow.passwords import verify_or_spend

T = TypeVar("T")

WINDOW_SECONDS = 15 * 60
PAIR_LIMIT = 10
CLIENT_LIMIT = 100
STAFF_CLIENT_LIMIT = 30
FREE_FAILURES = 20
FIRST_WAIT = 30
MAX_WAIT = 15 * 60
RESET_AFTER = 12 * 3600


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


def delay_key(key: str) -> str:
    return f"delay:{key}"[:200]  # the width of rate_counters.key, as ratelimit.take cuts it


def waits(session: Session, keys: list[str]) -> dict[str, datetime]:
    """Of these keys (account_key, staff_key), those whose next password try must wait: key -> the moment
    it may come (UTC)."""
    by_delay = {delay_key(key): key for key in keys}
    if not by_delay:
        return {}
    now_s = int(time.time())
    rows = session.execute(select(RateCounter.key, RateCounter.window_end)
                           .where(RateCounter.key.in_(by_delay), RateCounter.window_end > now_s))
    return {by_delay[key]: datetime.fromtimestamp(opens, UTC) for key, opens in rows}


def wait_after(failures: int) -> int:
    """Seconds the next try must wait after ``failures`` wrong passwords in a row (0 while quick)."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_WAIT, FIRST_WAIT * 2 ** min(failures - FREE_FAILURES, 30))


@dataclass
class Reservation:
    """What one password check took; ``give_back`` on a right password."""

    windows: list[tuple[str, int]] = field(default_factory=list)  # (key, window_end) of counted tries
    delays: list[str] = field(default_factory=list)  # delay keys whose failure count was raised


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def _window(session: Session, reservation: Reservation, key: str, limit: int, moment: float) -> None:
    wait = ratelimit.take(session, key, limit, WINDOW_SECONDS, at=moment)
    if wait is not None:
        raise Throttled(wait)
    reservation.windows.append((key[:200], ratelimit.window_end(moment, WINDOW_SECONDS)))


def _delay(session: Session, reservation: Reservation, key: str, moment: float) -> None:
    """Count one more failure of ``key`` now, unless its wait is not over (Throttled). The row's
    ``count`` is the failures in a row, ``window_end`` the unix second from which the next try may
    start. A compare-and-set on the count: of racing tries past the quick ones, one gets through."""
    key = delay_key(key)
    now_s = int(moment)
    # Forget a streak that ended long ago.
    session.execute(update(RateCounter).where(RateCounter.key == key,
                                              RateCounter.window_end < now_s - RESET_AFTER)
                    .values(count=0, window_end=now_s))
    # Quick failures: no wait at all (none can be pending below FREE_FAILURES), one guarded UPDATE. No
    # condition on the time: racing requests read the clock a little apart before they queue on the row.
    quick = (
        update(RateCounter)
        .where(RateCounter.key == key, RateCounter.count < FREE_FAILURES - 1)
        .values(count=RateCounter.count + 1, window_end=now_s)
    )
    # The key's first failure creates its row; a racer that lost that insert counts on the row it made.
    if (session.execute(quick).rowcount or ratelimit.ensure_row(session, key, now_s, count=1)  # type: ignore[attr-defined]
            or session.execute(quick).rowcount):  # type: ignore[attr-defined]
        reservation.delays.append(key)
        return
    streak, opens = session.execute(select(RateCounter.count, RateCounter.window_end)
                                    .where(RateCounter.key == key)).one()
    if opens > now_s:
        raise Throttled(max(1, opens - now_s))
    failures = streak + 1
    taken = session.execute(
        update(RateCounter)
        .where(RateCounter.key == key, RateCounter.count == streak, RateCounter.window_end <= now_s)
        .values(count=failures, window_end=now_s + wait_after(failures))
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        raise Throttled(FIRST_WAIT)  # another try took this turn
    reservation.delays.append(key)


def reserve(session: Session, *, pair: str, client: str, client_limit: int, account: str,
            at: float | None = None) -> Reservation:
    """Count one password check against every limit (in this order: the pair, the account's delay, the
    client address) or raise Throttled with the seconds to wait. Call it in a short transaction of its
    own, committed before the password is checked; when Throttled, roll that transaction back."""
    moment = time.time() if at is None else at
    reservation = Reservation()
    _window(session, reservation, pair, PAIR_LIMIT, moment)
    _delay(session, reservation, account, moment)
    # The client address's row last: every try from behind one NAT (or a bench) moves it, and on
    # PostgreSQL its lock is held from here to the commit.
    _window(session, reservation, client, client_limit, moment)
    return reservation


def reserve_login(session: Session, account: str, address: str | None,
                  at: float | None = None) -> Reservation:
    """An applicant's password check: the login, the verification link, the new-mail form."""
    return reserve(session, pair=account_client_key(account, address), client=client_key(address),
                   client_limit=CLIENT_LIMIT, account=account_key(account), at=at)


def reserve_staff(session: Session, name: str, address: str | None,
                  at: float | None = None) -> Reservation:
    """A staff member's password check (/staff/login)."""
    return reserve(session, pair=f"{client_key(address)}|{staff_key(name)}",
                   client=f"staff-{client_key(address)}", client_limit=STAFF_CLIENT_LIMIT,
                   account=staff_key(name), at=at)


def give_back(session: Session, reservation: Reservation) -> None:
    """A right password forgives that account's earlier failures from this address and ends the
    account's streak; the client address gets this try back but keeps its earlier failures (a sprayer
    who hits one right password keeps their count, an office's good logins never add up). The rows are
    taken in ``reserve``'s order (pair, delay, client) — another order deadlocked on PostgreSQL — and
    the client address's last: call it last in its transaction, that row stays locked until the commit."""
    (pair, pair_end), (client, client_end) = reservation.windows
    session.execute(update(RateCounter).where(RateCounter.key == pair, RateCounter.window_end == pair_end)
                    .values(count=0))
    for key in reservation.delays:
        session.execute(update(RateCounter).where(RateCounter.key == key).values(count=0, window_end=0))
    session.execute(update(RateCounter)
                    .where(RateCounter.key == client, RateCounter.window_end == client_end,
                           RateCounter.count > 0)
                    .values(count=RateCounter.count - 1))


def check(db: Database, prepare: Callable[[Session], tuple[T, Reservation, str | None]],
          password: str) -> tuple[T, Reservation, bool]:
    """One password check under the limits, holding no database connection while it waits for the
    argon2 slot or computes: ``prepare(session)`` reserves the try and returns what is checked, the
    reservation and the password hash (None: no such account) in one short transaction, committed first
    (on SQLite after this process's other writers, mailflow.notify.writes); then the password is
    checked. Raises Throttled or prepare's refusal with nothing counted. The caller gives the
    reservation back on a right password."""
    with writer_turn(db), db.session() as session:
        found, reservation, password_hash = prepare(session)
    return found, reservation, verify_or_spend(password_hash, password)


def check_in(session: Session, account: str, password_hash: str, password: str, client: str | None) -> bool:
    """An applicant's password check for code that holds a request's ``session`` (self-service changes
    by the signed-in holder): the reservation is committed in ``session`` — which commits whatever the
    caller had pending, so call it first — and the session holds no connection during the check (a second
    connection per request, waited for while holding the first, exhausted the pool under 20 at once).
    Raises Throttled (nothing counted); a right password's give-back is committed too."""
    try:
        reservation = reserve_login(session, account, client)
    except Throttled:
        session.rollback()
        raise
    session.commit()
    if not verify_or_spend(password_hash, password):
        return False
    give_back(session, reservation)
    session.commit()  # the counters' rows are not to stay locked while the request goes on
    return True


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
