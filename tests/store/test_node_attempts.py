"""Node runs per attempt: a retried node keeps a row for each failed attempt.

The flaky node calls the real test HTTP server (``/flaky/{key}?fail=N`` answers 503 to the
first N calls of a key); each test uses a fresh key.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.model import parse
from conv3n_jupyter.store import Recorder, Store, open_store, record_run, upgrade
from conv3n_jupyter.store.executions import (
    previous_results,
    read_execution,
    upsert_node_runs,
)

from .conftest import pg_schema


def _flaky(url: str, fail: int, **retry: Any) -> dict[str, Any]:
    """A workflow: ``call`` (retried, failing ``fail`` times) then ``after`` (no retry)."""
    return {
        "conv3n": "1",
        "name": "flaky",
        "nodes": {
            "call": {
                "type": "std/http_request",
                "config": {
                    "url": f"{url}/flaky/{uuid.uuid4().hex}?fail={fail}",
                    "fail_on_status": ["5xx"],
                },
                "retry": {"initial_delay": "10ms", "jitter": False, **retry},
            },
            "after": {
                "type": "std/noop",
                "config": {"value": "{{ $input.body.attempts }}"},
                "depends_on": ["call"],
            },
        },
    }


def _rows(store: Store, eid: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT node_id, attempt, status, port, error, started_at, duration_ms"
            f" FROM node_runs WHERE execution_id = '{eid}' ORDER BY node_id, attempt"
        ).all()
    out = [r._asdict() for r in rows]
    for row in out:  # SQLite's driver gives JSON columns as text, psycopg decodes them
        if isinstance(row["error"], str):
            row["error"] = json.loads(row["error"])
    return out


async def test_a_node_failing_twice_then_succeeding_keeps_three_rows(
    store: Store, http_server: str
) -> None:
    """Attempts 1 and 2 are stored with their errors and timings, attempt 3 as the success."""
    result = await record_run(store, parse(_flaky(http_server, 2, max_attempts=3)))
    assert result["status"] == "success" and result["output"] == 3
    rows = [r for r in _rows(store, result["execution_id"]) if r["node_id"] == "call"]
    assert [(r["attempt"], r["status"]) for r in rows] == [
        (1, "error"),
        (2, "error"),
        (3, "success"),
    ]
    for row in rows[:2]:
        error = row["error"]
        assert error["node"] == "call" and "503" in error["message"]
        assert error["attempts"] == row["attempt"] and error["type"]
        assert row["started_at"].endswith("Z") and row["duration_ms"] > 0
        assert row["port"] is None
    # Attempt 2 starts after attempt 1 and its 10 ms wait; the last row is the node's whole run.
    assert rows[0]["started_at"] < rows[1]["started_at"]
    assert rows[2]["started_at"] == rows[0]["started_at"]
    assert rows[2]["duration_ms"] > rows[0]["duration_ms"] + rows[1]["duration_ms"] + 10

    got = read_execution(store, result["execution_id"])
    call = got["nodes"]["call"]
    assert (call["attempt"], call["status"], call["port"]) == (3, "success", "success")
    assert call["output"]["body"] == {"attempts": 3}
    earlier = call["earlier_attempts"]
    assert [(a["attempt"], a["status"]) for a in earlier] == [(1, "error"), (2, "error")]
    assert all("503" in a["error"]["message"] for a in earlier)
    assert "earlier_attempts" not in got["nodes"]["after"]
    assert got["nodes"]["after"]["attempt"] == 1

    previous = previous_results(store, result["execution_id"])["nodes"]
    assert previous["call"]["attempts"] == 3 and previous["call"]["data"]["body"]["attempts"] == 3


async def test_retries_exhausted_keep_every_attempt(store: Store, http_server: str) -> None:
    """A node that never succeeds: one row per attempt, the last one the node's error."""
    result = await record_run(store, parse(_flaky(http_server, 9, max_attempts=2)))
    assert result["status"] == "error"
    call = read_execution(store, result["execution_id"])["nodes"]
    assert (call["call"]["attempt"], call["call"]["status"]) == (2, "error")
    assert call["call"]["error"]["attempts"] == 2
    assert [a["attempt"] for a in call["call"]["earlier_attempts"]] == [1]
    assert call["after"]["status"] == "skipped" and call["after"]["attempt"] == 0


async def test_a_node_cancelled_while_retrying_ends_on_a_cancelled_row(
    store: Store, http_server: str
) -> None:
    """Cancelled between attempts: the failed attempts stay, the cancelled row comes last."""
    wf = _flaky(http_server, 99, max_attempts=50, backoff="fixed", initial_delay="30ms")
    execution = Execution(parse(wf))
    recorder = Recorder(store, execution, flush_interval=0.02)
    execution.listeners.append(recorder)
    await recorder.start()
    run = asyncio.ensure_future(execution.run())
    for _ in range(200):  # until two attempts failed
        await asyncio.sleep(0.01)
        if len(_rows(store, execution.id)) >= 2:
            break
    execution.cancel()
    await run
    await recorder.finish()
    call = read_execution(store, execution.id)["nodes"]["call"]
    earlier = call["earlier_attempts"]
    assert len(earlier) >= 2 and {a["status"] for a in earlier} == {"error"}
    assert call["status"] == "cancelled" and call["attempt"] == len(earlier) + 1


async def test_upsert_replaces_an_attempt_and_adds_another(store: Store) -> None:
    """The key is (execution, node, attempt): the same attempt is replaced, a new one added."""
    result = await record_run(store, parse(_noop()))
    eid = result["execution_id"]
    upsert_node_runs(store, eid, [{"node_id": "x", "attempt": 1, "status": "running"}])
    upsert_node_runs(
        store,
        eid,
        [
            {"node_id": "x", "attempt": 1, "status": "error", "error": {"message": "boom"}},
            {"node_id": "x", "attempt": 2, "status": "success", "output": 7},
        ],
    )
    x = read_execution(store, eid)["nodes"]["x"]
    assert (x["attempt"], x["status"], x["output"]) == (2, "success", 7)
    assert [(a["status"], a["error"]) for a in x["earlier_attempts"]] == [
        ("error", {"message": "boom"})
    ]


def _noop() -> dict[str, Any]:
    return {"conv3n": "1", "name": "one", "nodes": {"a": {"type": "std/noop"}}}


def _migrate_v0002_rows(url: str) -> None:
    """Rows written at v0002 (one per node) are all there at v0003, and attempts can be added."""
    upgrade(url, "0002")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO executions (id, workflow_name, status, started_at)"
                " VALUES ('old', 'w', 'success', 1.0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO node_runs (execution_id, node_id, attempt, status, output)"
                " VALUES ('old', 'a', 3, 'success', '{\"n\": 1}'),"
                " ('old', 'p', 0, 'success', '2'), ('old', 's', 0, 'skipped', NULL)"
            )
        store = open_store(url)  # migrates to the newest revision
        try:
            got = read_execution(store, "old")["nodes"]
            assert {n: (r["attempt"], r["status"]) for n, r in got.items()} == {
                "a": (3, "success"),
                "p": (0, "success"),
                "s": (0, "skipped"),
            }
            assert got["a"]["output"] == {"n": 1} and "earlier_attempts" not in got["a"]
            key = sa.inspect(store.engine).get_pk_constraint("node_runs")
            assert key["constrained_columns"] == ["execution_id", "node_id", "attempt"]
            upsert_node_runs(store, "old", [{"node_id": "a", "attempt": 1, "status": "error"}])
            assert [
                e["attempt"] for e in read_execution(store, "old")["nodes"]["a"]["earlier_attempts"]
            ] == [1]
            with store.engine.begin() as conn:  # the foreign key survived the rebuild
                conn.exec_driver_sql("DELETE FROM executions WHERE id = 'old'")
                assert conn.exec_driver_sql("SELECT count(*) FROM node_runs").scalar() == 0
        finally:
            store.close()
    finally:
        engine.dispose()


def test_a_v0002_sqlite_database_keeps_its_node_runs(tmp_path: Path) -> None:
    """SQLite: the table rebuild keeps every row, its attempt, and the foreign key."""
    _migrate_v0002_rows(f"sqlite:///{tmp_path / 'v0002.db'}")


def test_a_v0002_postgresql_database_keeps_its_node_runs() -> None:
    """PostgreSQL: the new key replaces the old one in place; every row stays."""
    with pg_schema("conv3n_v0003") as url:
        _migrate_v0002_rows(url)


async def test_the_api_and_show_give_the_attempts(tmp_path: Path, http_server: str) -> None:
    """``GET /api/executions/{id}`` and ``conv3n show`` carry a retried node's failed attempts."""
    import httpx
    from click.testing import CliRunner

    from conv3n_jupyter.cli import main
    from tests.server.conftest import start_api

    url = f"sqlite:///{tmp_path / 'api.db'}"
    store = open_store(url)
    try:
        eid = (await record_run(store, parse(_flaky(http_server, 2, max_attempts=3))))[
            "execution_id"
        ]
    finally:
        store.close()
    api, stop = await asyncio.to_thread(start_api, url)
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            answer = await client.get(f"/api/executions/{eid}")
        assert answer.status_code == 200, answer.text
        call = answer.json()["nodes"]["call"]
    finally:
        await asyncio.to_thread(stop)
    assert call["attempt"] == 3 and call["status"] == "success"
    assert [a["attempt"] for a in call["earlier_attempts"]] == [1, 2]
    assert "503" in call["earlier_attempts"][0]["error"]["message"]

    shown = await asyncio.to_thread(
        CliRunner().invoke, main, ["show", eid, "--database-url", url], catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    lines = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}
    assert {"call #1", "call #2", "call", "after"} <= set(lines)
    assert "error" in lines["call #1"] and "503" in lines["call #2"]
    assert "success" in lines["call"] and " 3 " in lines["call"]
