"""The classifier that decides what the PostgreSQL pass runs (tests/conftest.py): a test reaching the
database by any fixture path is kept, a database-free one is left to the SQLite pass, and a test that
reaches the database in a way collection cannot see fails rather than silently dropping out."""

from __future__ import annotations

import contextlib
import uuid

import pytest

pytest_plugins = ("pytester",)

# The project's conftest, loaded into the inner run (its hooks and fixtures, as the real suite has them).
CONFTEST = "from tests.conftest import *  # noqa: F403\n"

SUITE = '''
import pytest


@pytest.fixture
def through_a_fixture(ctx):
    return ctx


@pytest.fixture
def two_levels_down(through_a_fixture):
    return through_a_fixture


@pytest.fixture(autouse=False)
def backend_name(db_backend):
    return db_backend


def test_free(tmp_path):
    assert tmp_path.exists()


def test_settings_alone(settings):
    assert settings.database.url.startswith("sqlite:////proc/")


def test_db_url(db_url):
    assert db_url


def test_ctx(ctx):
    assert ctx.db


def test_client(client):
    assert client


def test_settings_with_ctx(settings, ctx):
    assert settings is ctx.settings and settings.database.url == ctx.db.url


def test_nested(two_levels_down):
    assert two_levels_down


def test_backend(backend_name):
    assert backend_name


@pytest.mark.db
def test_marked():
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_parametrized(ctx, n):
    assert n


class TestInAClass:
    def test_method(self, ctx):
        assert ctx


@pytest.mark.once
def test_once(ctx):
    assert ctx


def test_asks_at_run_time(request):
    request.getfixturevalue("db_url")
'''

DATABASE = {"test_db_url", "test_ctx", "test_client", "test_settings_with_ctx", "test_nested", "test_backend",
            "test_marked", "test_parametrized[1]", "test_parametrized[2]", "test_method"}
FREE = {"test_free", "test_settings_alone", "test_asks_at_run_time"}


def _names(items: list[pytest.Item]) -> set[str]:
    return {item.name for item in items}


def _collect(suite: pytest.Pytester, *args: str) -> tuple[list[pytest.Item], set[str]]:
    """The items a run would execute (after the conftest's hooks) and the names it deselected."""
    recorder = suite.inline_run("--collect-only", "-p", "no:cacheprovider", *args)
    items = list(recorder.getcall("pytest_collection_finish").session.items)
    deselected = {item.name for call in recorder.getcalls("pytest_deselected") for item in call.items}
    return items, deselected


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_every_test_reaching_a_database_is_marked_and_kept_on_postgresql(suite: pytest.Pytester) -> None:
    items, deselected = _collect(suite, "--db=postgresql")
    assert _names(items) == DATABASE  # the 'once' test and the database-free ones are not there
    assert deselected == FREE | {"test_once"}
    assert all(item.get_closest_marker("db") for item in items)


def test_the_sqlite_pass_runs_everything_and_marks_only_the_database_tests(suite: pytest.Pytester) -> None:
    items, deselected = _collect(suite, "--db=sqlite")
    assert not deselected
    assert _names(items) == DATABASE | FREE | {"test_once"}
    assert {item.name for item in items if item.get_closest_marker("db")} == DATABASE | {"test_once"}


def test_a_database_reached_behind_the_classifiers_back_fails_the_sqlite_pass(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--db=sqlite", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(DATABASE | FREE | {"test_once"}) - 1, failed=1)
    result.stdout.fnmatch_lines(["*test_asks_at_run_time*reached the database at run time without the db*"])


@pytest.mark.postgres_only
def test_fresh_databases_are_copies_of_the_template_each_used_once_and_dropped(pg_template: str) -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL
    from tests.databases import FreshDatabases

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    prefix = f"mf_fresh_{uuid.uuid4().hex[:8]}_"

    def existing() -> set[str]:
        with admin.connect() as conn:
            return set(conn.scalars(text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"),
                                    {"p": prefix}))

    counter = iter(range(100))
    databases = FreshDatabases(admin, pg_template, ahead=2, name=lambda: f"{prefix}{next(counter)}")
    try:
        first, second = databases.take(), databases.take()
        assert first != second and {first, second} <= existing()
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        left_engine = create_engine(f"{base}/{first}")
        left_open = left_engine.connect()  # as a test may leave one
        assert left_open.scalar(text("SELECT count(*) FROM accounts")) == 0  # the template's schema, empty
        databases.give_back(first)
        third = databases.take()
        assert third not in (first, second)
    finally:
        databases.close()
    assert existing() == set()  # used, returned and never taken: all dropped
    with contextlib.suppress(Exception):  # its server process was ended by the drop
        left_open.close()
    left_engine.dispose()
    admin.dispose()
