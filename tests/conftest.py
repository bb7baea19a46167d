"""Shared fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL with --db=postgresql),
settings pointing at temporary folders, an AppContext and an HTTP client on the real app.

Database tests are found, not declared: a test whose fixtures reach one of DATABASE_FIXTURES (directly or
through other fixtures: ``ctx``, ``client``, ``settings`` in a test that also has a database ...) gets the
``db`` mark at collection. The PostgreSQL pass (--db=postgresql) runs only those; the database-free rest
ran in the SQLite pass and does not depend on the backend. A test that reaches the database without the mark
(a fixture asked for at run time) fails in either pass instead of dropping out of the PostgreSQL one;
tests/test_conftest.py holds the classifier to that.

In CI (CI=true) the PostgreSQL pass fails instead of skipping when the server does not answer.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mailflow.config import Settings, load_settings
from mailflow.context import AppContext
from mailflow.db import Database, init_schema
from tests.databases import FreshDatabases

PG_ADMIN_URL = os.environ.get("MAILFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=os.environ.get("MAILFLOW_TEST_DB", "sqlite"),
                     choices=["sqlite", "postgresql"], help="database backend for the tests")
    parser.addoption("--reference-paths", action="store_true",
                     help="send mails through the stdlib reference (build_message) instead of the direct "
                     "writer, here and in the processes the tests start (MAILFLOW_REFERENCE_PATHS=1)")


# The fixtures through which a test reaches a database or chooses its behaviour by backend.
DATABASE_FIXTURES = frozenset({"db_url", "db_backend", "pg_template", "pg_databases", "sqlite_template"})


def uses_database(item: pytest.Item) -> bool:
    """True when ``item`` must run on each backend: its fixture closure (every fixture it gets, directly or
    through other fixtures, autouse ones included) reaches a database fixture, or it is marked ``db`` or
    ``postgres_only``."""
    closure = set(getattr(item, "fixturenames", ()))
    return bool(closure & DATABASE_FIXTURES) or any(
        item.get_closest_marker(name) is not None for name in ("db", "postgres_only"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: reaches a database (set at collection from the fixtures; "
                            "the PostgreSQL pass runs only these)")
    if config.getoption("--reference-paths"):
        from mailflow import reference

        os.environ["MAILFLOW_REFERENCE_PATHS"] = "1"  # for the daemons and commands the tests start
        reference.ON = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = config.getoption("--db")
    kept, left = [], []
    for item in items:
        database = uses_database(item)
        if database:
            item.add_marker(pytest.mark.db)
        if backend == "sqlite" and "postgres_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs --db=postgresql"))
        if backend == "postgresql" and (not database or "once" in item.keywords):
            left.append(item)  # database-free, or heavy and run in the SQLite pass only
        else:
            kept.append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = ["database: postgresql (database-free and 'once' tests deselected: the SQLite pass runs them)"
             if config.getoption("--db") == "postgresql" else "database: sqlite"]
    if config.getoption("--reference-paths"):
        lines.append("reference paths: build_message, the ORM token read, the stdlib's MIME parser")
    return lines


def _pg_admin_engine():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_available() -> bool:
    try:
        with _pg_admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def pg_template(db_backend: str) -> Iterator[str | None]:
    """A migrated PostgreSQL database used as CREATE DATABASE ... TEMPLATE for each test."""
    if db_backend != "postgresql":
        yield None
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 does not answer (CI must not skip the PostgreSQL pass)")
        pytest.skip("PostgreSQL not available")
    name = f"mf_tpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    init_schema(db)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_databases(pg_template: str | None) -> Iterator[FreshDatabases]:
    """Copies of the template made ahead and dropped behind the tests (tests/databases.py)."""
    assert pg_template is not None
    admin = _pg_admin_engine()
    databases = FreshDatabases(admin, pg_template)
    try:
        yield databases
    finally:
        databases.close()
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    init_schema(db)
    db.dispose()
    return path


@pytest.fixture
def db_url(request: pytest.FixtureRequest, db_backend: str, pg_template: str | None, sqlite_template: Path,
           tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if request.node.get_closest_marker("db") is None:
        pytest.fail(f"{request.node.nodeid} reached the database at run time without the db mark, so the "
                    "PostgreSQL pass would leave it out: name a database fixture in its signature (or a "
                    "fixture's), or mark it pytest.mark.db", pytrace=False)
    if db_backend == "sqlite":
        target = tmp_path / "mailflow.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    databases: FreshDatabases = request.getfixturevalue("pg_databases")
    name = databases.take()
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        databases.give_back(name)  # dropped in the background, with any connection the test left


# What a database-free test's settings name: a file SQLite cannot create, so a test that opens a database
# through them without a database fixture fails at once instead of passing on a database of its own.
NO_DATABASE_URL = "sqlite:////proc/no-database-fixture/mailflow.db"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on temporary folders, in capture mode. With a database when the test has one (``ctx``,
    ``client`` or ``db_url`` among its fixtures: then these are ``ctx.settings``), else none at all."""
    database = request.getfixturevalue("db_url") if "db_url" in request.fixturenames else NO_DATABASE_URL
    env = {
        "MAILFLOW_DATABASE__URL": database,
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"),
        "MAILFLOW_HTTP__BASE_URL": "http://testserver",
        "MAILFLOW_SMTP__MODE": "capture",
        # Files, on both databases, for the tests written against files; tests/accounts/test_document_store.py
        # runs the database backend on both.
        "MAILFLOW_STORAGE__BACKEND": "filesystem",
    }
    return load_settings(None, env)


@pytest.fixture
def ctx(db_url: str, settings: Settings) -> Iterator[AppContext]:
    context = AppContext.from_settings(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def client(ctx: AppContext):
    from fastapi.testclient import TestClient

    from mailflow.web.app import create_app

    with TestClient(create_app(ctx)) as test_client:
        yield test_client
