"""Connecting to the store: URLs, the engine, migrations, transactions and error mapping.

SQLite is the embedded default (one file, WAL, foreign keys on); PostgreSQL runs the same code
through psycopg 3. Every store function takes a ``db`` first: a :class:`Store` (the function
opens its own transaction) or a ``Connection`` from :meth:`Store.begin` (several calls share
one transaction). SQLAlchemy's exceptions never leave this package: :func:`transaction` maps
them to :class:`~conv3n_jupyter.errors.StoreError` and :class:`~conv3n_jupyter.errors.AlreadyExists`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc

from ..errors import AlreadyExists, StoreError
from ._sqlite_lock import SqliteLock

DEFAULT_URL = "sqlite:///./conv3n.db"
DEFAULT_MAX_OUTPUT_BYTES = 1_048_576
PREVIEW_CHARS = 500
MIGRATIONS = Path(__file__).with_name("migrations")


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for a URL as a user writes it (``postgresql://`` → psycopg 3)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    if url.startswith(("sqlite:", "postgresql+")):
        return url
    raise StoreError(
        f"unsupported database URL {_masked(url)!r}: use sqlite:///path.db or postgresql://..."
    )


def _masked(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return url.split("@")[-1]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API) run while a run writes; NORMAL sync is durable against a
    # process crash, which is what crash recovery needs, and keeps commits off fsync.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# Blocks may return values JSON does not know (datetimes, bytes): store their text. One
# encoder for all calls: json.dumps with options builds a new one each time (twice as slow).
_dumps = json.JSONEncoder(default=str, ensure_ascii=False).encode


def create_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for ``url``, with the SQLite settings applied on every connection."""
    full = normalize_url(url)
    try:
        if full.startswith("sqlite"):
            # Writes happen in worker threads (the recorder's flushes), hence check_same_thread.
            engine = sa.create_engine(
                full, connect_args={"check_same_thread": False}, json_serializer=_dumps
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(full, pool_pre_ping=True, json_serializer=_dumps)
    except (exc.ArgumentError, ImportError) as e:
        raise StoreError(f"cannot use database URL {_masked(url)!r}: {e}") from e
    return engine


def upgrade(url_or_engine: str | sa.Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest) with the shipped migrations."""
    from alembic import command
    from alembic.config import Config

    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else create_engine(url_or_engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except exc.SQLAlchemyError as e:
        raise StoreError(f"migrating {_masked(str(engine.url))!r} failed: {e}") from e
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def _sqlite_file(engine: sa.Engine) -> str | None:
    """The database file of a SQLite engine; ``None`` for an in-memory database."""
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return str(Path(name).resolve())


class Store:
    """A database holding workflows, executions, node runs, variables and artifacts.

        >>> store = open_store("sqlite:///./conv3n.db")
        >>> from conv3n_jupyter.store.executions import read_executions
        >>> page = read_executions(store, status="error", limit=10)

    ``max_output_bytes``: JSON values (node input/output, execution output) larger than this
    are stored as ``{"truncated": true, "bytes": N, "preview": "..."}``.
    """

    def __init__(self, engine: sa.Engine, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES):
        self.engine = engine
        self.max_output_bytes = max_output_bytes
        # SQLite has one writer at a time: transactions queue on a lock of ours instead of
        # sleeping in SQLite's busy handler (see _sqlite_lock). PostgreSQL needs none.
        self.lock: SqliteLock | contextlib.nullcontext[None] = (
            SqliteLock(_sqlite_file(engine))
            if engine.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction: committed on success, rolled back on an error."""
        with self.lock, _mapped(), self.engine.begin() as conn:
            conn.info["store"] = self
            yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if isinstance(self.lock, SqliteLock):
            self.lock.close()

    def __repr__(self) -> str:
        return f"<Store {_masked(str(self.engine.url))}>"


def open_store(
    url: str | None = None,
    *,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    migrate: bool = True,
) -> Store:
    """Open (and by default migrate to the newest schema) the store at ``url``.

    ``url`` defaults to ``$CONV3N_DATABASE_URL``, else ``sqlite:///./conv3n.db``.
    """
    engine = create_engine(url or os.environ.get("CONV3N_DATABASE_URL") or DEFAULT_URL)
    if migrate:
        upgrade(engine)
    return Store(engine, max_output_bytes=max_output_bytes)


Db = Store | sa.Connection
"""What every store function takes first: a store, or a connection inside a transaction."""


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except exc.IntegrityError as e:
        raise AlreadyExists(f"already exists or conflicts with a stored row: {e.orig}") from e
    except exc.SQLAlchemyError as e:
        raise StoreError(f"store error: {e}") from e


@contextmanager
def transaction(db: Db) -> Iterator[sa.Connection]:
    """The connection to use for ``db``: a new transaction for a store, else ``db`` itself."""
    if isinstance(db, Store):
        with db.begin() as conn:
            yield conn
        return
    with _mapped():
        yield db


def store_of(conn: sa.Connection) -> Store | None:
    """The :class:`Store` a connection was opened from (its settings), if any."""
    found = conn.info.get("store")
    return found if isinstance(found, Store) else None


def json_text(value: Any, limit: int) -> str | None:
    """``value`` as JSON text for a driver-level write, truncated like :func:`limit_json`."""
    if value is None:
        return None
    text = _dumps(value)
    if len(text) * 4 <= limit:  # no UTF-8 character is longer than 4 bytes: surely fits
        return text
    size = len(text.encode())
    if size <= limit:
        return text
    return _dumps({"truncated": True, "bytes": size, "preview": text[:PREVIEW_CHARS]})


def limit_json(value: Any, limit: int) -> Any:
    """``value`` itself, or a truncation marker when its JSON is larger than ``limit`` bytes."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = _dumps(value)
    size = len(text.encode())
    if size <= limit:
        return value
    return {"truncated": True, "bytes": size, "preview": text[:PREVIEW_CHARS]}
