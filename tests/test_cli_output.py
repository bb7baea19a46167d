"""What the list commands print (issue 15 items 13 and 17): one way to write a time in every JSON output
(ISO 8601, Taipei, +08:00, to the second), and for people a header row over aligned columns — a rich
table on a terminal, plain columns when piped — or one line when there is nothing to list."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from mailflow.accounts import throttle
from mailflow.commands.table import cell_width, plain_lines, print_table
from mailflow.context import AppContext
from mailflow.models import ApplicationStatus, StaffUser
from tests.cli_runner import Result, run_cli
from tests.factories import make_applicant
from tests.mail.helpers import queue_mail

TAIPEI_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")


@pytest.fixture
def mailflow(ctx: AppContext, db_url: str, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """The real command line, in this process, on the test's database (schema created by ctx)."""
    from mailflow.db import init_schema

    init_schema(ctx.db)
    monkeypatch.setenv("MAILFLOW_DATABASE__URL", db_url)

    return lambda *args: run_cli(capsys, *args)


def _seed(ctx: AppContext) -> None:
    with ctx.db.session() as session:
        make_applicant(session, account="wang1234", company="臺灣港務股份有限公司基隆分公司",
                       status=ApplicationStatus.SUBMITTED)
        make_applicant(session, account="lee5678", name="李大華", email="lee@example.com", ubn="12345675",
                       company="長榮", status=ApplicationStatus.SUBMITTED)
        session.add(StaffUser(name="huang.reviewer", role="reviewer", password_hash="x"))
    queue_mail(ctx, "wang@example.com")


def test_every_json_list_writes_times_one_way(ctx: AppContext, mailflow: Callable[..., Result]) -> None:
    _seed(ctx)
    review = json.loads(mailflow("review", "list", "--json").stdout)
    outbox = json.loads(mailflow("outbox", "list", "--json").stdout)
    assert len(review) == 2 and len(outbox) == 1
    times = [r["submitted_at"] for r in review] + [outbox[0]["created_at"], outbox[0]["next_attempt_at"]]
    assert all(TAIPEI_ISO.match(t) for t in times), times
    staff = json.loads(mailflow("staff", "list", "--json").stdout)
    assert staff == [{"name": "huang.reviewer", "role": "reviewer", "disabled": False, "locked_until": None}]


def test_staff_list_shows_until_when_a_name_waits_after_a_streak_of_wrong_passwords(
        ctx: AppContext, mailflow: Callable[..., Result]) -> None:
    _seed(ctx)
    moment = time.time()
    with ctx.db.session() as session:
        for _ in range(throttle.FREE_FAILURES):  # the last one starts the wait
            throttle._delay(session, throttle.Reservation(), throttle.staff_key("huang.reviewer"), moment)
    [row] = json.loads(mailflow("staff", "list", "--json").stdout)
    assert TAIPEI_ISO.match(row["locked_until"])
    until = datetime.fromisoformat(row["locked_until"]).timestamp()
    assert int(moment) + throttle.FIRST_WAIT - 1 <= until <= int(moment) + throttle.FIRST_WAIT
    table = mailflow("staff", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "STATE", "LOCKED", "UNTIL"] and len(table[1].split()) == 5


def test_piped_lists_have_a_header_and_aligned_columns(ctx: AppContext,
                                                       mailflow: Callable[..., Result]) -> None:
    _seed(ctx)
    lines = mailflow("review", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "SUBMITTED", "ACCOUNT", "NAME", "UBN", "COMPANY"]
    assert len(lines) == 3
    # Each column starts at the same screen column on every line, CJK names (two columns a character)
    # included: the UBN column is where the header puts it.
    ubn_at = cell_width(lines[0][:lines[0].index("UBN")])
    for line, ubn in zip(lines[1:], ("04595257", "12345675"), strict=True):
        assert cell_width(line[:line.index(ubn)]) == ubn_at, lines
    outbox = mailflow("outbox", "list").stdout.splitlines()
    assert outbox[0].split()[:5] == ["ID", "CREATED", "STATUS", "TRIES", "TEMPLATE"]
    assert "wang@example.com" in outbox[1] and "queued" in outbox[1]
    staff = mailflow("staff", "list").stdout.splitlines()
    assert staff[0].split() == ["NAME", "ROLE", "STATE", "LOCKED", "UNTIL"]
    assert staff[1].split() == ["huang.reviewer", "reviewer", "active"]


def test_empty_lists_say_so_in_one_line(mailflow: Callable[..., Result]) -> None:
    for args, words in ((("review", "list"), "no applications waiting for review"),
                        (("outbox", "list"), "outbox is empty"),
                        (("outbox", "list", "--status", "failed"), "outbox is empty (status failed)"),
                        (("staff", "list"), "no staff logins yet")):
        done = mailflow(*args)
        assert done.returncode == 0
        assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith(words), (args, done.stdout)
    assert json.loads(mailflow("review", "list", "--json").stdout) == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_rich_table_and_a_pipe_plain_columns() -> None:
    rows = [["1", "[bold]王小明[/bold]"], ["12", "lee"]]
    screen = Terminal()
    print_table(["ID", "NAME"], rows, "nothing", out=screen, right=["ID"])
    shown = screen.getvalue()
    assert "[bold]王小明[/bold]" in shown  # data is printed as it is, never read as rich markup
    assert "─" in shown  # rich's rule under the header
    piped = io.StringIO()
    print_table(["ID", "NAME"], rows, "nothing", out=piped)
    assert piped.getvalue().splitlines() == plain_lines(["ID", "NAME"], rows)
    assert "─" not in piped.getvalue()
    assert plain_lines(["A", "B"], [["王小明", "x"], ["ab", "y"]]) == ["A       B", "王小明  x", "ab      y"]
