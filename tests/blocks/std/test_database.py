"""Tests of ``std/database`` on a temp SQLite file and the machine's real PostgreSQL and MariaDB.

The servers are skipped only when unreachable outside CI; with ``CI`` set they must be there.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.blocks.std.database import Database, _Pool, _Target, _translate
from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.engine.runtime import Runtime
from conv3n_jupyter.errors import BlockError
from conv3n_jupyter.model import parse
from tests.blocks.fakectx import FakeContext

BLOCK = Database()
SERVERS = {
    "postgresql": ("postgresql://postgres@127.0.0.1:5432/test", 5432),
    "mysql": ("mysql://root@127.0.0.1:3306/test", 3306),
}
ID_COLUMN = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "SERIAL PRIMARY KEY",
    "mysql": "INT AUTO_INCREMENT PRIMARY KEY",
}


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _server_url(dialect: str) -> str:
    """The test server's URL; skips when it is down, unless under CI where it must be up."""
    url, port = SERVERS[dialect]
    if not _reachable(port):
        if os.environ.get("CI"):
            pytest.fail(f"{dialect} is not reachable on 127.0.0.1:{port} under CI")
        pytest.skip(f"{dialect} is not reachable on 127.0.0.1:{port}")
    return url


class DB:
    """One dialect's URL, a fresh table and a context whose pools are closed at the end."""

    def __init__(self, dialect: str, url: str, root: Path) -> None:
        self.dialect, self.url, self.root = dialect, url, root
        self.table = f"t_{uuid.uuid4().hex[:12]}"
        self.resources: dict[str, Any] = {}

    async def run(self, operation: dict[str, Any], url: str | None = None, **kw: Any) -> Any:
        config = {"connection": url or self.url, "operation": operation}
        ctx = FakeContext(BLOCK, config, files_root=self.root, resources=self.resources, **kw)
        return await BLOCK.run(ctx)

    async def sql(
        self, sql: str, params: dict[str, Any] | None = None, kind: str = "execute"
    ) -> Any:
        return await self.run({"type": kind, "sql": sql, "params": params})

    async def aclose(self) -> None:
        for pool in self.resources.values():
            await pool.aclose()

    async def rows(self) -> list[dict[str, Any]]:
        out = await self.sql(f"SELECT name, n FROM {self.table} ORDER BY id", kind="query")
        return list(out["rows"])


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DB]:
    dialect = request.param
    url = "sqlite:///data.db" if dialect == "sqlite" else _server_url(dialect)
    d = DB(dialect, url, tmp_path)
    await d.sql(
        f"CREATE TABLE {d.table} (id {ID_COLUMN[dialect]}, name VARCHAR(200) NOT NULL UNIQUE, n INT)"
    )
    try:
        yield d
    finally:
        try:
            await d.sql(f"DROP TABLE {d.table}")
        finally:
            await d.aclose()


# -- per dialect -----------------------------------------------------------------------------


async def test_query_binds_named_params(db: DB) -> None:
    """A query binds :name values and returns row objects and a count; colons in literals stay."""
    for name, n in [("a", 1), ("b", 2), ("c", 3)]:
        await db.sql(f"INSERT INTO {db.table} (name, n) VALUES (:name, :n)", {"name": name, "n": n})
    out = await db.sql(
        f"SELECT name, n, 'x:y' AS lit FROM {db.table} WHERE n >= :low ORDER BY n -- :ignored",
        {"low": 2},
        kind="query",
    )
    assert out == {
        "rows": [{"name": "b", "n": 2, "lit": "x:y"}, {"name": "c", "n": 3, "lit": "x:y"}],
        "count": 2,
    }
    percent = await db.sql("SELECT '100%' AS p, :v AS v", {"v": "50%"}, kind="query")
    assert percent["rows"] == [{"p": "100%", "v": "50%"}]


async def test_execute_gives_rowcount_and_lastrowid(db: DB) -> None:
    """execute reports affected rows, and the new id where the database tells it."""
    first = await db.sql(f"INSERT INTO {db.table} (name, n) VALUES (:name, 1)", {"name": "a"})
    second = await db.sql(f"INSERT INTO {db.table} (name, n) VALUES (:name, 1)", {"name": "b"})
    assert first["rowcount"] == second["rowcount"] == 1
    if db.dialect == "postgresql":
        assert second["lastrowid"] is None
    else:
        assert second["lastrowid"] == first["lastrowid"] + 1
    updated = await db.sql(f"UPDATE {db.table} SET n = :n", {"n": 5})
    assert updated["rowcount"] == 2


async def test_failed_transaction_writes_nothing(db: DB) -> None:
    """When the second statement of a transaction fails, the first one is rolled back."""
    insert = f"INSERT INTO {db.table} (name, n) VALUES (:name, :n)"
    with pytest.raises(BlockError) as info:
        await db.run(
            {
                "type": "transaction",
                "statements": [
                    {"sql": insert, "params": {"name": "kept?", "n": 1}},
                    {"sql": insert, "params": {"name": "kept?", "n": 2}},  # unique violation
                ],
            },
            node_id="save",
        )
    text = str(info.value)
    assert "node 'save'" in text and "statements[1]" in text
    assert info.value.details["statement"] == 1 and not info.value.retryable
    assert await db.rows() == []
    ok = await db.run(
        {
            "type": "transaction",
            "statements": [
                {"sql": insert, "params": {"name": "x", "n": 1}},
                {"sql": f"SELECT COUNT(*) AS c FROM {db.table}"},
            ],
        }
    )
    assert ok == [
        {"rowcount": 1, "lastrowid": ok[0]["lastrowid"]},
        {"rows": [{"c": 1}], "count": 1},
    ]


async def test_injection_attempt_stays_data(db: DB) -> None:
    """A parameter holding SQL is stored verbatim and runs nothing."""
    evil = "x'); DROP TABLE t; -- :n %s ? \\'"
    evil = evil.replace(" t;", f" {db.table};")
    await db.sql(f"INSERT INTO {db.table} (name, n) VALUES (:name, :n)", {"name": evil, "n": 7})
    assert await db.rows() == [{"name": evil, "n": 7}]


async def test_missing_table_error_names_node_and_table(db: DB) -> None:
    """A statement on a missing table fails with the driver's message and the node id."""
    with pytest.raises(BlockError) as info:
        await db.sql("SELECT * FROM no_such_table_zz", kind="query")
    assert "no_such_table_zz" in str(info.value)
    assert info.value.node == "node"


async def test_connections_are_pooled_per_url(db: DB) -> None:
    """Two runs on one URL share one pooled connection."""
    await db.sql(f"INSERT INTO {db.table} (name) VALUES ('a')")
    await db.rows()
    pools = [p for p in db.resources.values() if isinstance(p, _Pool)]
    assert len(pools) == 1 and pools[0].created == 1


async def test_values_become_json(db: DB) -> None:
    """Decimal, dates, intervals and bytes come back as JSON-friendly values."""
    if db.dialect == "postgresql":
        sql = (
            "SELECT 1.50::numeric AS d, 2::numeric AS w, "
            "'2024-01-02 03:04:05'::timestamp AS ts, '2024-01-02'::date AS day, "
            "'\\x00ff'::bytea AS b, interval '90 seconds' AS iv, "
            "'6f1c5c52-0000-4000-8000-000000000000'::uuid AS u, :j::jsonb AS j"
        )
        out = await db.sql(sql, {"j": {"k": [1]}}, kind="query")
        assert out["rows"][0] == {
            "d": 1.5,
            "w": 2,
            "ts": "2024-01-02T03:04:05",
            "day": "2024-01-02",
            "b": "AP8=",
            "iv": 90.0,
            "u": "6f1c5c52-0000-4000-8000-000000000000",
            "j": {"k": [1]},
        }
    elif db.dialect == "mysql":
        sql = (
            "SELECT CAST(1.50 AS DECIMAL(5,2)) AS d, SUM(2) AS w, "
            "CAST('2024-01-02 03:04:05' AS DATETIME) AS ts, X'00FF' AS b, TIME('00:01:30') AS iv"
        )
        out = await db.sql(sql, kind="query")
        assert out["rows"][0] == {
            "d": 1.5,
            "w": 2,
            "ts": "2024-01-02T03:04:05",
            "b": "AP8=",
            "iv": 90.0,
        }
    else:
        out = await db.sql("SELECT X'00FF' AS b, 1.5 AS f, :j AS j", {"j": {"k": 1}}, kind="query")
        assert out["rows"][0] == {"b": "AP8=", "f": 1.5, "j": '{"k": 1}'}


# -- servers: credentials and drivers --------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
async def test_password_never_appears_in_errors(dialect: str, tmp_path: Path) -> None:
    """A failing connection's error shows the URL with *** instead of the password."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"{dialect}://admin:Sup3r%2Fsecret@127.0.0.1:{port}/test"
    d = DB(dialect, url, tmp_path)
    with pytest.raises(BlockError) as info:
        await d.sql("SELECT 1", kind="query")
    text = str(info.value)
    assert "secret" not in text and "Sup3r" not in text
    assert f"admin:***@127.0.0.1:{port}" in text
    target = _Target.parse(url, tmp_path)
    assert target.redact(f"boom {url} Sup3r/secret") == f"boom {target.display} ***"


@pytest.mark.parametrize(
    ("dialect", "module", "extra"),
    [("postgresql", "psycopg", "postgres"), ("mysql", "aiomysql", "mysql")],
)
async def test_missing_driver_names_the_extra(
    dialect: str, module: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the driver installed, the error gives the pip extra to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BlockError, match=rf"pip install 'conv3n-jupyter\[{extra}\]'"):
        await DB(dialect, f"{dialect}://u@127.0.0.1/test", tmp_path).sql("SELECT 1")


# -- SQLite paths and placeholders -----------------------------------------------------------


async def test_sqlite_paths_stay_inside_the_files_root(tmp_path: Path) -> None:
    """Relative SQLite paths resolve under the files root; escapes and outside paths are refused."""
    d = DB("sqlite", "sqlite:///sub/../x.db", tmp_path)
    try:
        await d.sql("CREATE TABLE a (v INT)")
        for url in ("sqlite:///../x.db", "sqlite:////etc/x.db", "sqlite://x.db"):
            with pytest.raises(BlockError):
                await d.run({"type": "query", "sql": "SELECT 1"}, url=url)
    finally:
        await d.aclose()
    assert (tmp_path / "x.db").is_file()


def test_placeholders_translate_per_dialect() -> None:
    """:name becomes ? or %s outside literals, comments and casts; % is escaped for format-style drivers."""
    sql = "SELECT :a, ':b', \"c:d\", x::int, 5 % 2 /* :e */ FROM t WHERE y = :a -- :f"
    assert _translate(sql, {"a": 1}, "sqlite", "k") == (
        "SELECT ?, ':b', \"c:d\", x::int, 5 % 2 /* :e */ FROM t WHERE y = ? -- :f",
        (1, 1),
    )
    pg, values = _translate(sql + "\n$$ :g $$ :h", {"a": [1], "h": {"z": 1}}, "postgresql", "k")
    assert pg.startswith("SELECT %s, ':b', \"c:d\", x::int, 5 %% 2")
    assert pg.endswith("$$ :g $$ %s") and values == ([1], [1], '{"z": 1}')
    my, _ = _translate("SELECT 'it\\'s :no', :a # :c", {"a": 1}, "mysql", "k")
    assert my == "SELECT 'it\\'s :no', %s # :c"
    with pytest.raises(BlockError, match=r"no value for :b"):
        _translate("SELECT :b", {}, "mysql", "operation")
    with pytest.raises(BlockError, match=r"not \?"):
        _translate("SELECT ?", {}, "sqlite", "operation")


# -- through the engine ----------------------------------------------------------------------


async def test_workflow_shares_one_pool_and_closes_it(tmp_path: Path) -> None:
    """A workflow's database nodes share one pooled connection that the Runtime closes."""
    url = "sqlite:///flow.db"

    def node(
        sql: str, kind: str = "execute", after: str | None = None, **params: Any
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "std/database",
            "config": {
                "connection": url,
                "operation": {"type": kind, "sql": sql, "params": params},
            },
        }
        if after:
            spec["depends_on"] = [after]
        return spec

    wf = parse(
        {
            "name": "db",
            "nodes": {
                "create": node("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"),
                "insert": node(
                    "INSERT INTO users (name) VALUES (:name)",
                    after="create",
                    name="{{ $params.who }}",
                ),
                "read": node("SELECT id, name FROM users", kind="query", after="insert"),
            },
            "params": {"who": {"type": "string"}},
        }
    )
    rt = Runtime(files_root=tmp_path)
    result = await Execution(wf, {"who": "ada"}, runtime=rt).run()
    assert result["status"] == "success", result
    assert result["nodes"]["read"]["data"] == {"rows": [{"id": 1, "name": "ada"}], "count": 1}
    key = _Target.parse(url, tmp_path).key
    pool = rt.resource(f"std/database {key}", lambda: None)
    assert isinstance(pool, _Pool) and pool.created == 1
    await rt.aclose()
    assert pool._idle == [] and pool._closed


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
async def test_password_is_redacted_from_server_errors(dialect: str, tmp_path: Path) -> None:
    """A server's error that echoes the password (auth failure, SQL text) shows *** instead."""
    scheme, rest = _server_url(dialect).split("://", 1)
    user, host = rest.split("@", 1)
    d = DB(dialect, f"{scheme}://{user}:pw4Zq9x@{host}", tmp_path)
    try:
        with pytest.raises(BlockError) as info:
            await d.sql("SELECT zz_pw4Zq9x FROM missing_pw4Zq9x", kind="query")
    finally:
        await d.aclose()
    text = str(info.value)
    assert "pw4Zq9x" not in text and f"{user}:***@" in text
