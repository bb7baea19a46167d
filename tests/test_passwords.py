"""mailflow.passwords: argon2id at no less than the OWASP minimum, old hashes still accepted."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher

from mailflow.passwords import hash_password, needs_rehash, verify_password


def test_hashes_are_argon2id_with_at_least_the_owasp_minimum() -> None:
    stored = hash_password("Harbour2024")
    found = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
    assert found, "not an argon2id hash"
    memory_kib, time_cost, parallelism = map(int, found.groups())
    assert memory_kib >= 19 * 1024 and time_cost >= 2 and parallelism >= 1


def test_only_the_right_password_verifies_and_every_hash_is_salted() -> None:
    first, second = hash_password("Harbour2024"), hash_password("Harbour2024")
    assert first != second
    assert verify_password(first, "Harbour2024") and verify_password(second, "Harbour2024")
    assert not verify_password(first, "harbour2024") and not verify_password(first, "")
    assert not verify_password("not a hash", "Harbour2024")


def test_a_hash_made_with_the_old_parameters_still_verifies_and_asks_to_be_redone() -> None:
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash("Harbour2024")
    assert verify_password(old, "Harbour2024") and not verify_password(old, "wrong")
    assert needs_rehash(old) and needs_rehash("not a hash")
    assert not needs_rehash(hash_password("Harbour2024"))


def test_many_checks_at_once_all_finish_with_the_right_answers() -> None:
    stored = hash_password("Harbour2024")
    tries = ["Harbour2024", "wrong"] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda password: verify_password(stored, password), tries))
    assert answers == [password == "Harbour2024" for password in tries]


def test_a_login_upgrades_a_hash_made_with_older_parameters(ctx, client) -> None:
    from argon2 import PasswordHasher

    from mailflow.models import Account, AccountKind, AccountStatus
    from mailflow.passwords import needs_rehash
    from mailflow.timeutil import now

    old = PasswordHasher(memory_cost=65536, time_cost=3, parallelism=4).hash("Harbor-pass-2024")
    with ctx.db.session() as session:
        account = Account(kind=AccountKind.SHARED, account="oldhash01", account_key="oldhash01",
                          name="王小明", mobile="0912345678", email="old@example.com",
                          email_key="old@example.com",
                          password_hash=old, status=AccountStatus.APPROVED, email_verified_at=now(),
                          email_verified_address="old@example.com")
        session.add(account)
    assert needs_rehash(old)
    answer = client.post("/api/session", json={"account": "oldhash01", "password": "Harbor-pass-2024"})
    assert answer.status_code == 200
    with ctx.db.session() as session:
        stored = session.query(Account).filter_by(account="oldhash01").one().password_hash
    assert stored != old and not needs_rehash(stored)
    again = client.post("/api/session", json={"account": "oldhash01", "password": "Harbor-pass-2024"})
    assert again.status_code == 200
