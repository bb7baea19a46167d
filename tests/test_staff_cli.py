"""`mailflow staff add` run by a script that forgot --password-stdin: one clear line, no traceback."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import func, select

from mailflow.context import AppContext
from mailflow.models import StaffUser


def test_staff_add_without_a_terminal_or_password_says_how(ctx: AppContext, db_url: str) -> None:
    env = {**os.environ, "MAILFLOW_DATABASE__URL": db_url}
    done = subprocess.run(["mailflow", "staff", "add", "ops1", "--role", "admin"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          start_new_session=True)  # no controlling terminal: getpass reads stdin
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "--password-stdin" in done.stderr
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(StaffUser)) == 0
