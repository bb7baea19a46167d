"""Password hashing (argon2id via argon2-cffi) for applicants and staff alike.

Parameters: argon2id at the OWASP Password Storage Cheat Sheet's first recommended setting, m=19 MiB,
t=2, p=1. argon2-cffi's default (RFC 9106 low-memory: m=64 MiB, t=3, p=4) measured 155 ms per check on the
2-core VM against 19 ms for this one, and 64 MiB per check in flight; see docs/BENCHMARKS.md
(Verification). Hashes made with other parameters carry them and still verify.

Both functions block for the whole computation (argon2-cffi releases the GIL meanwhile): call them from
sync code running in the threadpool, never on the event loop.
"""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM,
                         type=Type.ID)
# At most one computation per core at a time: more only adds memory (19 MiB each, 64 MiB for old hashes)
# and stretches every request's latency, the cores being already busy.
_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with _slots:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def verify_or_spend(password_hash: str | None, password: str) -> bool:
    """verify_password, or, when there is no hash (no such account), the same work against a fixed
    hash and False: an unknown name answers as slowly as a wrong password."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password("no-such-account-password")
        verify_password(_dummy_hash, password)
        return False
    return bool(password) and verify_password(password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True for a hash made with other parameters (e.g. before these were chosen): a caller that has
    just verified the password may store hash_password(password) in its place."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
