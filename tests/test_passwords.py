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
