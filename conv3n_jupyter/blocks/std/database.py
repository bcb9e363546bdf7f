"""``std/database``: one SQL query, statement or transaction on SQLite, PostgreSQL or MySQL.

``connection`` is a URL; put credentials in a secret (``"{{ $secrets.DB_URL }}"``):

* ``sqlite:///data/app.db`` — a file under the files root (``$CONV3N_FILES_ROOT``); an absolute
  path (``sqlite:////srv/files/app.db``) must also lie inside it; ``sqlite:///:memory:``.
  Standard library ``sqlite3``, run in a worker thread.
* ``postgresql://user:pass@host:5432/db`` (``postgres://`` too) — psycopg 3
  (``pip install 'conv3n-jupyter[postgres]'``).
* ``mysql://user:pass@host:3306/db`` (``mariadb://`` too) — aiomysql
  (``pip install 'conv3n-jupyter[mysql]'``).

Parameters use ONE style on every database: ``:name`` in the SQL, values in the ``params``
object (``"SELECT * FROM t WHERE id = :id"`` with ``{"id": 3}``). Names are found outside
string literals, quoted identifiers and comments (``::`` casts stay casts); each becomes the
driver's own placeholder and the value is bound by the driver, never written into the SQL.
An object or list value is bound as JSON text (a list is a PostgreSQL array there).

Data by ``operation.type``:

* ``query`` → ``{"rows": [{column: value}], "count"}``;
* ``execute`` → ``{"rowcount", "lastrowid"}`` (``lastrowid`` is null on PostgreSQL: use
  ``RETURNING`` in a ``query``);
* ``transaction`` → one result per statement (rows when it returns rows, else rowcount), all
  committed or none (MySQL commits DDL statements implicitly).

Column values become JSON: ``Decimal`` → int when whole, else float; date, time and datetime
→ ISO 8601 text; ``timedelta`` → seconds; bytes → base64 text; UUIDs and other objects → text.
Connections are pooled per URL for the engine's lifetime (closed with its Runtime).

    {"type": "std/database", "config": {"connection": "{{ $secrets.DB_URL }}",
     "operation": {"type": "query", "sql": "SELECT * FROM users WHERE id = :id",
                   "params": {"id": "{{ $input.id }}"}}}}
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..._paths import resolve_inside
from ...errors import BlockError
from ...types import json_type
from ..base import Block, NodeContext

_STATEMENT = {
    "type": "object",
    "properties": {
        "sql": {"type": "string", "minLength": 1},
        "params": {
            "type": ["object", "string", "null"],
            "description": "values for the SQL's :name placeholders, or an expression giving them",
        },
    },
    "required": ["sql"],
}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql"}
_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
_SCHEMES.update({"mysql": "mysql", "mariadb": "mysql"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
MAX_CONNECTIONS = 10


class Database(Block):
    type = "std/database"
    title = "Database"
    description = "Runs SQL on SQLite, PostgreSQL or MySQL with bound :name parameters."
    icon = "⛁"
    config_schema = {
        "type": "object",
        "properties": {
            "connection": {
                "type": "string",
                "minLength": 1,
                "description": "sqlite:///file.db (inside the files root), postgresql://… or "
                "mysql://… URL, usually from $secrets",
            },
            "operation": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["query", "execute", "transaction"]},
                    **_STATEMENT["properties"],  # type: ignore[dict-item]
                    "statements": {"type": ["array", "string"], "items": _STATEMENT},
                },
                "required": ["type"],
                "description": "query → rows, execute → rowcount/lastrowid, transaction → "
                "statements all or nothing; parameters are :name placeholders bound from params",
            },
        },
        "required": ["connection", "operation"],
        "additionalProperties": False,
    }

    async def run(self, ctx: NodeContext) -> Any:
        target = _Target.parse(ctx.config.get("connection"), Path(ctx.files_root))
        kind, statements = _statements(ctx.config.get("operation"), target)
        pool: _Pool = ctx.resource(f"std/database {target.key}", lambda: _Pool(target))
        try:
            results = await pool.run(kind, statements)
        except _StatementFailed as failed:
            raise _db_error(
                target, kind, failed.index, len(statements), failed.exc, ctx.node_id
            ) from None
        return results if kind == "transaction" else results[0]


# -- connection URLs -------------------------------------------------------------------------


class _Target:
    """A parsed connection URL: dialect, driver arguments and what to hide in messages."""

    def __init__(self, dialect: str, url: str, display: str, secrets: list[str], key: str):
        self.dialect, self.url, self.display, self.secrets = dialect, url, display, secrets
        self.key = key

    @classmethod
    def parse(cls, url: Any, root: Path) -> _Target:
        if not isinstance(url, str) or "://" not in url:
            raise _config_error("connection", f"must be a database URL, got {json_type(url)}")
        scheme = url.split("://", 1)[0].lower()
        dialect = _SCHEMES.get(scheme)
        if dialect is None:
            raise _config_error(
                "connection", f"unsupported scheme {scheme!r}: use sqlite, postgresql or mysql"
            )
        if dialect == "sqlite":
            path = _sqlite_path(url.split("://", 1)[1], root)
            return cls(dialect, path, f"sqlite:///{path}", [], f"sqlite:{path}")
        parts = urlsplit(url)
        password = parts.password or ""
        secrets = [s for s in {password, unquote(password)} if s]
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, host = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
        display = f"{scheme}://{netloc}{parts.path}"
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        return cls(dialect, url, display, secrets, f"{dialect}:{digest}")

    def redact(self, text: str) -> str:
        if self.dialect != "sqlite":  # a SQLite "url" is a path, already shown as is
            text = text.replace(self.url, self.display)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _sqlite_path(rest: str, root: Path) -> str:
    if not rest.startswith("/") or rest == "/":
        raise _config_error("connection", "a SQLite URL is sqlite:///relative/path.db")
    path = rest[1:]
    if path == ":memory:":
        return path
    if not path.startswith("/"):
        return str(resolve_inside(root, path))
    real_root = Path(os.path.realpath(root))
    if not Path(os.path.realpath(path)).is_relative_to(real_root):
        raise _config_error(
            "connection", f"SQLite file {path!r} is outside the files root {str(real_root)!r}"
        )
    return path


# -- statements and placeholders -------------------------------------------------------------


def _statements(op: Any, target: _Target) -> tuple[str, list[tuple[str, Any]]]:
    if not isinstance(op, Mapping):
        raise _config_error("operation", f"must be an object, got {json_type(op)}")
    kind = op.get("type")
    raw: Any
    if kind in ("query", "execute"):
        raw = [op]
        where = "operation"
    elif kind == "transaction":
        raw = op.get("statements")
        if not isinstance(raw, list) or not raw:
            raise _config_error("operation.statements", "must be a non-empty list")
        where = "operation.statements"
    else:
        raise _config_error("operation.type", f"must be query, execute or transaction: {kind!r}")
    out = []
    for i, stmt in enumerate(raw):
        key = where if kind != "transaction" else f"{where}[{i}]"
        if not isinstance(stmt, Mapping) or not isinstance(stmt.get("sql"), str):
            raise _config_error(key, "needs a 'sql' string")
        params = stmt.get("params")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise _config_error(f"{key}.params", f"must be an object, got {json_type(params)}")
        out.append(_translate(stmt["sql"], params, target.dialect, key))
    return str(kind), out


def _translate(
    sql: str, params: Mapping[str, Any], dialect: str, key: str
) -> tuple[str, tuple[Any, ...]]:
    """SQL with ``:name`` turned into the driver's placeholder, and the values in order.

    psycopg and PyMySQL format the whole text with ``%``, so every literal ``%`` is doubled.
    """
    mark, percent = ("?", False) if dialect == "sqlite" else ("%s", True)
    out: list[str] = []
    values: list[Any] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        end = _skip(sql, i, dialect)
        if end > i:
            chunk = sql[i:end]
            out.append(chunk.replace("%", "%%") if percent else chunk)
            i = end
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and (m := _NAME.match(sql, i + 1)):
            name = m.group()
            if name not in params:
                raise _config_error(f"{key}.params", f"has no value for :{name} in the SQL")
            values.append(_bind(params[name], dialect))
            out.append(mark)
            i = m.end()
        elif c == "?" and dialect == "sqlite":
            raise _config_error(f"{key}.sql", "use :name placeholders with params, not ?")
        else:
            out.append("%%" if c == "%" and percent else c)
            i += 1
    return "".join(out), tuple(values)


def _skip(sql: str, i: int, dialect: str) -> int:
    """The end of a literal, quoted name or comment starting at ``i`` (``i`` when none does)."""
    c = sql[i]
    if c in "'\"`":
        j = i + 1
        while j < len(sql):
            if sql[j] == "\\" and dialect == "mysql":
                j += 2
            elif sql[j] == c:
                if sql.startswith(c, j + 1):
                    j += 2
                else:
                    return j + 1
            else:
                j += 1
        return len(sql)
    if sql.startswith("--", i) or (c == "#" and dialect == "mysql"):
        j = sql.find("\n", i)
        return len(sql) if j < 0 else j
    if sql.startswith("/*", i):
        j = sql.find("*/", i + 2)
        return len(sql) if j < 0 else j + 2
    if c == "$" and dialect == "postgresql" and (m := _DOLLAR_TAG.match(sql, i)):
        j = sql.find(m.group(), m.end())
        return len(sql) if j < 0 else j + len(m.group())
    return i


def _bind(value: Any, dialect: str) -> Any:
    if isinstance(value, list) and dialect == "postgresql":
        return value
    if isinstance(value, (Mapping, list)):
        return json.dumps(value)
    return value


# -- results ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """A column value as JSON (see the module docstring)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def _result(kind: str, description: Any, rows: Any, rowcount: int, lastrowid: Any) -> Any:
    if kind == "query" or (kind == "transaction" and description):
        names = [d[0] for d in description or ()]
        objects = [{n: _jsonable(v) for n, v in zip(names, row, strict=False)} for row in rows]
        return {"rows": objects, "count": len(objects)}
    return {"rowcount": rowcount, "lastrowid": lastrowid or None}


class _StatementFailed(Exception):
    def __init__(self, index: int, exc: BaseException) -> None:
        self.index, self.exc = index, exc


# -- drivers and the pool --------------------------------------------------------------------


def _import(dialect: str, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BlockError(
            f"{dialect} URLs need the {module} driver: "
            f"pip install 'conv3n-jupyter[{_EXTRAS[dialect]}]'",
            block_type=Database.type,
            retryable=False,
        ) from exc


class _Pool:
    """Up to ``MAX_CONNECTIONS`` connections to one URL (one for SQLite, whose writes serialise)."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.created = 0  # connections opened so far, for callers that check reuse
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(1 if target.dialect == "sqlite" else MAX_CONNECTIONS)
        self._closed = False

    async def run(self, kind: str, statements: list[tuple[str, Any]]) -> list[Any]:
        async with self._connection() as conn:
            if self.target.dialect == "sqlite":
                return await asyncio.to_thread(_sqlite_run, conn, kind, statements)
            runner = _postgres_run if self.target.dialect == "postgresql" else _mysql_run
            return await runner(conn, kind, statements)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            healthy = False
            try:
                yield conn
                healthy = True
            except _StatementFailed:
                # A failed statement leaves a usable connection: every run ends its transaction.
                healthy = True
                raise
            finally:
                if healthy and not self._closed:
                    self._idle.append(conn)
                else:
                    await _close(conn)

    async def _connect(self) -> Any:
        t = self.target
        try:
            if t.dialect == "sqlite":
                import sqlite3

                if t.url != ":memory:":
                    # Like std/file writes: the folder (inside the files root) is created.
                    Path(t.url).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(t.url, check_same_thread=False, isolation_level=None)
            elif t.dialect == "postgresql":
                psycopg = _import(t.dialect, "psycopg")
                conn = await psycopg.AsyncConnection.connect(
                    t.url, autocommit=True, connect_timeout=10
                )
            else:
                aiomysql = _import(t.dialect, "aiomysql")
                parts = urlsplit(t.url)
                conn = await aiomysql.connect(
                    host=parts.hostname or "localhost",
                    port=parts.port or 3306,
                    user=unquote(parts.username or ""),
                    password=unquote(parts.password or ""),
                    db=parts.path.lstrip("/") or None,
                    autocommit=True,
                    charset="utf8mb4",
                    connect_timeout=10,
                )
        except BlockError:
            raise
        except Exception as exc:
            raise BlockError(
                t.redact(f"cannot connect to {t.display}: {_message(exc)}"),
                block_type=Database.type,
                details={"reason": "connect", "error": type(exc).__name__},
            ) from None
        self.created += 1
        return conn

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: Any) -> None:
    result = conn.close()
    if asyncio.iscoroutine(result):
        await result


def _sqlite_run(conn: Any, kind: str, statements: list[tuple[str, Any]]) -> list[Any]:
    results = []
    if kind == "transaction":
        conn.execute("BEGIN")
    try:
        for i, (sql, values) in enumerate(statements):
            try:
                cur = conn.execute(sql, values)
                rows = cur.fetchall() if cur.description else []
            except Exception as exc:
                raise _StatementFailed(i, exc) from exc
            results.append(_result(kind, cur.description, rows, cur.rowcount, cur.lastrowid))
        if kind == "transaction":
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


async def _postgres_run(conn: Any, kind: str, statements: list[tuple[str, Any]]) -> list[Any]:
    results = []
    transaction = conn.transaction() if kind == "transaction" else contextlib.nullcontext()
    async with transaction:
        for i, (sql, values) in enumerate(statements):
            try:
                async with conn.cursor() as cur:
                    await cur.execute(sql, values)
                    rows = await cur.fetchall() if cur.description else []
                    desc = [(d.name,) for d in cur.description or ()]
                    results.append(_result(kind, desc, rows, cur.rowcount, None))
            except Exception as exc:
                raise _StatementFailed(i, exc) from exc
    return results


async def _mysql_run(conn: Any, kind: str, statements: list[tuple[str, Any]]) -> list[Any]:
    results = []
    if kind == "transaction":
        await conn.begin()
    try:
        for i, (sql, values) in enumerate(statements):
            try:
                async with conn.cursor() as cur:
                    await cur.execute(sql, values)
                    rows = await cur.fetchall() if cur.description else []
                    results.append(
                        _result(kind, cur.description, rows, cur.rowcount, cur.lastrowid)
                    )
            except Exception as exc:
                raise _StatementFailed(i, exc) from exc
        if kind == "transaction":
            await conn.commit()
    except BaseException:
        if kind == "transaction":
            await conn.rollback()
        raise
    return results


# -- errors ----------------------------------------------------------------------------------

_RETRYABLE = ("40001", "40P01", 1205, 1213, "database is locked")


def _message(exc: BaseException) -> str:
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int):  # PyMySQL: (code, message)
        return f"{args[1]} (error {args[0]})"
    return " ".join(str(exc).split()) or type(exc).__name__


def _db_error(
    target: _Target, kind: str, index: int, total: int, exc: BaseException, node: str
) -> BlockError:
    where = f" at statements[{index}] ({index + 1} of {total})" if kind == "transaction" else ""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    message = _message(exc)
    retryable = code in _RETRYABLE or "database is locked" in message
    return BlockError(
        target.redact(f"{kind} on {target.display} failed{where}: {message}"),
        block_type=Database.type,
        node=node,
        retryable=retryable,
        details={"statement": index, "error": type(exc).__name__, "code": code},
    )


def _config_error(key: str, reason: str) -> BlockError:
    return BlockError(f"config key {key!r}: {reason}", block_type=Database.type, retryable=False)
