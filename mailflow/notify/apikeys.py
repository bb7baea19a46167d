"""API keys: issuing, hashing, revoking, and deciding each request (known key, scope, rate), with every
use recorded in ``api_key_uses``.

A key is ``mf_`` and 256 random bits (43 base64url characters), printed once by ``mailflow apikey add``.
What is stored is HMAC-SHA256 of the key under a key derived from ``security.secret_key``. Not argon2, as
passwords are: a slow hash protects secrets a person chose, which can be guessed offline; 256 random bits
cannot be guessed however fast the hash, so argon2 would only add tens of milliseconds of CPU to every
API call — and, being salted, it could not be looked up by an index, so every request would try every key.
The server key means a copy of the table alone cannot even confirm a leaked key. Changing
``security.secret_key`` therefore retires every API key (they must be issued again).

The rate is GCRA (a leaky bucket kept as one number, the "theoretical arrival time" ``rate_tat``): a key
of R requests a minute may make R at once, then one every 60/R seconds. Deciding a request is ONE
guarded UPDATE (``take_turn``): the row lock (PostgreSQL) or the write lock (SQLite) makes concurrent
requests of one key take turns on the same row, and the WHERE clause is evaluated on the newest value
(PostgreSQL re-checks it after waiting for a concurrent update), so twenty requests at once on a key of
five a minute get exactly five turns. It runs in its own short transaction, before the request's work,
so the row is never locked while a notification is being written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Float, Table, bindparam, case, insert, select, update
from sqlalchemy.orm import Session

from mailflow import audit
from mailflow.config import Settings
from mailflow.db import Database
from mailflow.models import ApiKey, ApiKeyUse, ApiScope
from mailflow.notify.writes import writer_turn
from mailflow.timeutil import iso_taipei, now

log = logging.getLogger(__name__)

KEY_PREFIX = "mf_"
BURST_SECONDS = 60.0  # a key may use a whole minute's rate at once


class ApiRefusal(Exception):
    """A request the key does not allow: 401 (missing, unknown, revoked), 403 (scope), 429 (rate)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    """The key a request was made with, once it was allowed."""

    key_id: int
    name: str


@lru_cache(maxsize=4)
def _hash_key(secret_key: str) -> bytes:
    # A key of its own for API keys, so no other use of secret_key can produce the same values.
    return hmac.new(secret_key.encode("utf-8"), b"mailflow api keys", hashlib.sha256).digest()


def key_hash(settings: Settings, key: str) -> bytes:
    return hmac.new(_hash_key(settings.security.secret_key), key.encode("utf-8"), hashlib.sha256).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_key(session: Session, settings: Settings, name: str, scopes: list[str],
            rate_per_minute: int | None = None) -> tuple[ApiKey, str]:
    """A new key named ``name``; returns the row and the key itself (shown once, never stored)."""
    key = new_key()
    row = ApiKey(name=name, key_hash=key_hash(settings, key), prefix=key[:10],
                 scopes=sorted(set(scopes)), rate_per_minute=rate_per_minute or settings.api.rate_per_minute,
                 rate_tat=0.0)
    session.add(row)
    session.flush()
    audit.record(session, "operator", "apikey.added", "api_key", row.id, name=name, scopes=row.scopes,
                 rate_per_minute=row.rate_per_minute)
    return row, key


def find_key(session: Session, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).first()


def revoke_key(session: Session, name: str) -> ApiKey | None:
    """Revoke ``name``; None when there is no such key. Revoking twice keeps the first time."""
    row = find_key(session, name)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = now()
        audit.record(session, "operator", "apikey.revoked", "api_key", row.id, name=name)
    return row


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(KEY_PREFIX) or len(value) > 100:
        return None
    return value


# What the caller reads: the API's refusals are in zh-TW like every other answer of mailflow.
MISSING = "缺少或無法辨識的 API 金鑰(Authorization: Bearer mf_…)"
UNKNOWN = "API 金鑰無效或已撤銷"
FORBIDDEN = "此 API 金鑰沒有使用此功能的權限({scope})"
TOO_MANY = "請求過於頻繁,請於 {seconds} 秒後再試"


# Every API request runs these, so they are built once (Core statements with bound parameters): built
# per request, the SQLAlchemy expressions cost more CPU than SQLite spent running them.
_KEYS = cast(Table, ApiKey.__table__)
_AT = bindparam("at", type_=Float)
_BURST = bindparam("burst", BURST_SECONDS, type_=Float)
_START = case((_KEYS.c.rate_tat > _AT, _KEYS.c.rate_tat), else_=_AT)
_TAKE_TURN = (update(_KEYS)
              .where(_KEYS.c.id == bindparam("key_id"), _KEYS.c.revoked_at.is_(None),
                     _START + _BURST / _KEYS.c.rate_per_minute <= _AT + _BURST)
              .values(rate_tat=_START + _BURST / _KEYS.c.rate_per_minute, allowed=_KEYS.c.allowed + 1,
                      last_used_at=bindparam("used_at")))
_FIND = select(_KEYS.c.id, _KEYS.c.name, _KEYS.c.scopes, _KEYS.c.revoked_at).where(
    _KEYS.c.key_hash == bindparam("digest"))
_RECORD_USE = insert(cast(Table, ApiKeyUse.__table__))


def take_turn(session: Session, key_id: int, moment: float) -> bool:
    """One request of key ``key_id`` at ``moment`` (epoch seconds) within its rate: True, and the turn is
    taken, or False and nothing changed. One statement, race-free (see the module docstring)."""
    result = session.execute(_TAKE_TURN, {"key_id": key_id, "at": moment, "burst": BURST_SECONDS,
                                          "used_at": now()})
    return bool(getattr(result, "rowcount", 0))


def _seconds_until_turn(session: Session, key_id: int, moment: float) -> int:
    row = session.execute(select(ApiKey.rate_tat, ApiKey.rate_per_minute).where(ApiKey.id == key_id)).one()
    interval = BURST_SECONDS / row.rate_per_minute
    return max(1, math.ceil(row.rate_tat + interval - BURST_SECONDS - moment))


def _count_refusal(session: Session, key_id: int, column: str) -> None:
    counter = getattr(ApiKey, column)
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values({column: counter + 1})
                    .execution_options(synchronize_session=False))


def authorize(db: Database, settings: Settings, presented: str | None, scope: str, method: str, path: str,
              client: str) -> Caller:
    """Decide one request: the Caller when the key may make it now, else ApiRefusal. Every request
    made with a known key is recorded (allowed or not), in one short transaction of its own."""
    if presented is None:
        raise ApiRefusal(401, MISSING)
    digest = key_hash(settings, presented)
    refusal: ApiRefusal | None = None
    with db.session() as session:
        row = session.execute(_FIND, {"digest": digest}).first()
        if row is None:
            refusal = ApiRefusal(401, UNKNOWN)
        else:
            with writer_turn(db):
                outcome, refusal = _decide(session, row.id, row.revoked_at is not None, scope in row.scopes,
                                           scope)
                session.execute(_RECORD_USE, {"key_id": row.id, "at": now(), "method": method[:8],
                                              "path": path[:200], "outcome": outcome, "client": client[:64]})
                session.commit()
    if refusal is not None:
        if row is None:
            # Never the key itself: a mistyped key is still somebody's secret.
            log.warning("API request with an unknown key from %s to %s %s", client, method, path)
        raise refusal
    assert row is not None
    return Caller(row.id, row.name)


def _decide(session: Session, key_id: int, revoked: bool, scoped: bool,
            scope: str) -> tuple[str, ApiRefusal | None]:
    if revoked:
        _count_refusal(session, key_id, "refused")
        return "revoked", ApiRefusal(401, UNKNOWN)
    if not scoped:
        _count_refusal(session, key_id, "refused")
        return "forbidden", ApiRefusal(403, FORBIDDEN.format(scope=scope))
    moment = time.time()
    if take_turn(session, key_id, moment):
        return "allowed", None
    wait = _seconds_until_turn(session, key_id, moment)
    _count_refusal(session, key_id, "rate_limited")
    return "rate_limited", ApiRefusal(429, TOO_MANY.format(seconds=wait), retry_after=wait)


def valid_scopes(scopes: list[str]) -> list[str]:
    """``scopes`` when each is known (notify, events), else ValueError naming the unknown ones."""
    unknown = sorted(set(scopes) - set(ApiScope))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(ApiScope)}")
    return sorted(set(scopes))


def listing(session: Session) -> list[dict[str, Any]]:
    """Every API key by name as `mailflow apikey list` shows it: never its secret or hash; times ISO,
    Taipei; its use counters."""
    return [{"name": k.name, "prefix": k.prefix, "scopes": k.scopes, "rate_per_minute": k.rate_per_minute,
             "created_at": iso_taipei(k.created_at), "last_used_at": iso_taipei(k.last_used_at),
             "revoked_at": iso_taipei(k.revoked_at), "requests": k.allowed, "rate_limited": k.rate_limited,
             "refused": k.refused}
            for k in session.scalars(select(ApiKey).order_by(ApiKey.name))]
