"""mailflow.staff: the staff logins' rules, as the command line and the sign-in page use them."""

from __future__ import annotations

import pytest

from mailflow import staff
from mailflow.context import AppContext
from mailflow.models import StaffRole
from mailflow.passwords import verify_password
from tests.factories import STAFF_PASSWORD, make_staff


def test_the_rules_of_a_new_name_and_password() -> None:
    assert staff.name_problem("lin.reviewer") is None
    assert staff.name_problem("x" * staff.MAX_NAME) is None
    for bad in ("", "two words", "x" * (staff.MAX_NAME + 1), "tab\there"):
        assert staff.name_problem(bad) == "NAME must be 1-60 characters without spaces"
    assert staff.password_problem("x" * staff.MIN_PASSWORD) is None
    short = staff.password_problem("x" * (staff.MIN_PASSWORD - 1))
    assert short == "the password must have at least 10 characters"


def test_a_taken_name_whatever_its_case_and_a_new_password_ending_the_sessions(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        added = staff.add(session, "Lin.Reviewer", StaffRole.REVIEWER, "a-long-password")
        session.flush()
        with pytest.raises(staff.StaffRefused, match="already exists"):
            staff.add(session, "lin.reviewer", StaffRole.ADMIN, "a-long-password")
        generation = added.session_generation
        assert staff.set_password(session, " LIN.reviewer ", "another-password") is added
        assert verify_password(added.password_hash, "another-password")
        assert added.session_generation == generation + 1
        with pytest.raises(staff.StaffRefused, match="no staff 'nobody'"):
            staff.set_password(session, "nobody", "another-password")
        assert [row["name"] for row in staff.listing(session)] == ["Lin.Reviewer"]


def test_roles_and_the_sign_in(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        support = make_staff(session, "chen", "support")
        admin = make_staff(session, "wu", "admin")
        assert staff.has_role(support, ()) and staff.has_role(support, ("support",))
        assert not staff.has_role(support, ("reviewer",))
        assert staff.has_role(admin, ("reviewer",))
    assert staff.authenticate(ctx.db, "CHEN", STAFF_PASSWORD, "192.0.2.1").status == 200
    wrong = staff.authenticate(ctx.db, "chen", "not-the-password", "192.0.2.1")
    assert wrong.staff is None and wrong.status == 401 and wrong.message == "帳號或密碼錯誤。"
    assert staff.authenticate(ctx.db, "nobody", STAFF_PASSWORD, "192.0.2.1").status == 401
