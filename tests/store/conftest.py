"""Store fixtures: every test runs on a temp SQLite file and on the machine's PostgreSQL.

PostgreSQL tests use a schema of their own per test run (dropped at the end) through the
connection's ``search_path``; they are skipped when the server is unreachable, except under
CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from conv3n_jupyter.store import Store, open_store
from conv3n_jupyter.store.tables import metadata

PG_BASE = os.environ.get("CONV3N_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1))


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema, dropped afterwards; skips if unreachable."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable at {PG_BASE}: {exc.orig}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema shared by the tests of one run."""
    with pg_schema("conv3n_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database per backend, shared by the tests of one run."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("store") / "conv3n.db"
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty store; emptied again after the test."""
    opened = open_store(store_url)
    yield opened
    with opened.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    opened.close()
