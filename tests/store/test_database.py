"""URLs, connection settings and the shipped migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conv3n_jupyter.errors import StoreError
from conv3n_jupyter.store import normalize_url, open_store, upgrade
from conv3n_jupyter.store.database import create_engine
from conv3n_jupyter.store.tables import metadata

from .conftest import pg_schema


def test_urls_as_users_write_them_map_to_the_drivers() -> None:
    """``postgresql://`` and ``postgres://`` use psycopg 3; SQLite URLs stay; others are refused."""
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///./conv3n.db") == "sqlite:///./conv3n.db"
    with pytest.raises(StoreError, match="unsupported database URL 'mysql://u:\\*\\*\\*@h/db'"):
        normalize_url("mysql://u:secret@h/db")


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    """Every SQLite connection runs in WAL mode with foreign keys enforced."""
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def _assert_migrated_matches_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migration_on_an_empty_sqlite_file_matches_the_tables(tmp_path: Path) -> None:
    """Migrating an empty SQLite file creates exactly the tables of ``tables.py``; again is a no-op."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    upgrade(url)
    store = open_store(url)
    _assert_migrated_matches_tables(store.engine)
    store.close()


def test_migration_on_an_empty_postgresql_schema_matches_the_tables() -> None:
    """Migrating an empty PostgreSQL schema creates exactly the tables of ``tables.py``."""
    with pg_schema("conv3n_mig") as url:
        store = open_store(url)
        _assert_migrated_matches_tables(store.engine)
        store.close()


def test_unreachable_database_is_a_store_error() -> None:
    """A database that cannot be reached fails with StoreError, not a SQLAlchemy exception."""
    with pytest.raises(StoreError, match="migrating"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
