"""The schema: init creates it once and again without change, and the migrations match the models."""

from __future__ import annotations

from sqlalchemy import inspect

from mailflow.db import Database, init_schema, schema_is_current


def test_init_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    init_schema(db)
    init_schema(db)
    assert schema_is_current(db)
    tables = set(inspect(db.engine).get_table_names())
    assert {"accounts", "applications", "outbox", "inbound_messages", "support_items"} <= tables
    db.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from mailflow.models import Base

    db = Database(db_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == [], "models changed without a migration: run scripts/regen_initial_migration.sh"


def test_the_lockout_leftovers_go_and_come_back(db_url: str) -> None:
    """0004 drops login_attempts and the unused lockout columns with rows in the tables, and its
    downgrade puts them back; upgrading again leaves the schema current (on SQLite through batch mode)."""
    from alembic import command
    from sqlalchemy import text

    from mailflow.db import alembic_config
    from tests.factories import make_account, make_staff

    db = Database(db_url)
    with db.session() as session:
        make_account(session)
        make_staff(session, "lin", "reviewer")

    def columns(table: str) -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns(table)}

    assert "login_attempts" not in inspect(db.engine).get_table_names()
    assert "failed_logins" not in columns("accounts")
    assert {"failed_logins", "locked_until"}.isdisjoint(columns("staff_users"))
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "0003")
    assert "login_attempts" in inspect(db.engine).get_table_names()
    assert {"failed_logins", "locked_until"} <= columns("staff_users")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT failed_logins FROM accounts")).scalars().all() == [0]
    command.upgrade(cfg, "head")
    assert schema_is_current(db)
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM staff_users")).scalar() == 1
    db.dispose()
