"""Shared fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL with --db=postgresql),
settings pointing at temporary folders, an AppContext and an HTTP client on the real app.

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

PG_ADMIN_URL = os.environ.get("MAILFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=os.environ.get("MAILFLOW_TEST_DB", "sqlite"),
                     choices=["sqlite", "postgresql"], help="database backend for the tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = config.getoption("--db")
    for item in items:
        if backend == "sqlite" and "postgres_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs --db=postgresql"))
        if backend == "postgresql" and "once" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="runs in the SQLite pass only"))


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
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    init_schema(db)
    db.dispose()
    return path


@pytest.fixture
def db_url(db_backend: str, pg_template: str | None, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if db_backend == "sqlite":
        target = tmp_path / "mailflow.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    name = f"mf_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    env = {
        "MAILFLOW_DATABASE__URL": db_url,
        "MAILFLOW_STORAGE__DOCUMENTS_DIR": str(tmp_path / "documents"),
        "MAILFLOW_HTTP__BASE_URL": "http://testserver",
        "MAILFLOW_SMTP__MODE": "capture",
        # Files, on both databases, for the tests written against files; tests/accounts/test_document_store.py
        # runs the database backend on both.
        "MAILFLOW_STORAGE__BACKEND": "filesystem",
    }
    return load_settings(None, env)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    context = AppContext.from_settings(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def client(ctx: AppContext):
    from fastapi.testclient import TestClient

    from mailflow.web.app import create_app

    with TestClient(create_app(ctx)) as test_client:
        yield test_client
