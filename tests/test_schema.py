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
