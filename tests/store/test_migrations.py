"""The migrations build exactly the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from agent.store.db import Database, schema_is_current


def test_migrations_match_the_tables(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        db.migrate()  # a second run is a no-op
        assert schema_is_current(db.engine)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
    finally:
        db.close()


def test_a_fresh_database_is_not_current_until_migrated(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert not schema_is_current(db.engine)
    finally:
        db.close()
