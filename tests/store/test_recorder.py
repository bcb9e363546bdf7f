"""Recording runs: rows before the run, node runs as nodes finish, the final status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.errors import AlreadyExists, Conv3nError, StoreError
from conv3n_jupyter.model import parse
from conv3n_jupyter.store import Recorder, Store, open_store, record_run
from conv3n_jupyter.store.executions import read_execution, read_executions
from conv3n_jupyter.store.workflows import create_workflow


def _chain(n: int) -> dict[str, Any]:
    nodes = {f"n{i}": {"type": "std/noop", "config": {"value": i}} for i in range(n)}
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return {"conv3n": "1", "name": f"chain{n}", "nodes": nodes, "edges": edges}


async def test_a_200_node_run_stores_every_node(store: Store) -> None:
    """A recorded 200-node run ends with 200 node rows, success and the sink's output."""
    result = await record_run(store, parse(_chain(200)))
    got = read_execution(store, result["execution_id"])
    assert got["status"] == "success" and result["status"] == "success"
    assert len(got["nodes"]) == 200
    assert {n["status"] for n in got["nodes"].values()} == {"success"}
    assert got["output"] == 199 and got["last_node"] == "n199"
    assert got["duration_ms"] is not None and got["finished_at"] >= got["started_at"]


async def test_a_failing_run_stores_error_and_skipped_nodes(store: Store) -> None:
    """A node that fails makes the execution ``error`` with the node's error; later nodes are skipped."""
    wf = _chain(3)
    wf["nodes"]["n1"] = {"type": "std/transform", "config": {"input": "{{ 1 / 0 }}"}}
    result = await record_run(store, parse(wf))
    got = read_execution(store, result["execution_id"])
    assert got["status"] == "error" and got["error"]["node"] == "n1"
    assert got["nodes"]["n1"]["status"] == "error" and got["nodes"]["n2"]["status"] == "skipped"


async def test_node_rows_are_written_while_the_run_goes_on(store: Store) -> None:
    """With a slow node, the nodes before it are stored before the run ends (batched flushes)."""
    wf = _chain(3)
    wf["nodes"]["n2"] = {"type": "std/delay", "config": {"duration": 600}}
    execution = Execution(parse(wf))
    recorder = Recorder(store, execution, flush_interval=0.05)
    execution.listeners.append(recorder)
    await recorder.start()
    run = asyncio.ensure_future(execution.run())
    await asyncio.sleep(0.3)
    during = read_execution(store, execution.id)
    assert during["status"] == "running" and set(during["nodes"]) == {"n0", "n1"}
    await run
    await recorder.finish()
    after = read_execution(store, execution.id)
    assert after["status"] == "success" and set(after["nodes"]) == {"n0", "n1", "n2"}
    assert recorder.flushes == 2


async def test_a_saved_workflow_runs_by_id_with_its_version(store: Store) -> None:
    """``record_run`` by workflow id records the id and the current version."""
    create_workflow(store, _chain(2), workflow_id="saved")
    result = await record_run(store, workflow_id="saved")
    page = read_executions(store, workflow_id="saved")
    assert [e["id"] for e in page.items] == [result["execution_id"]]
    assert page.items[0]["workflow_version"] == 1


async def test_params_trigger_and_large_outputs_are_stored(tmp_path: Path) -> None:
    """The execution row keeps params and trigger; a node output above the limit is truncated."""
    store = open_store(f"sqlite:///{tmp_path / 'small.db'}", max_output_bytes=200)
    try:
        wf = _chain(2)
        wf["nodes"]["n0"]["config"]["value"] = {"text": "é" * 300}
        wf["nodes"]["n1"]["config"]["value"] = {"text": "short"}
        result = await record_run(store, parse(wf), {"who": "Ada"}, trigger={"type": "manual"})
        got = read_execution(store, result["execution_id"])
        assert got["params"] == {"who": "Ada"} and got["trigger"] == {"type": "manual"}
        big = got["nodes"]["n0"]["output"]
        assert big["truncated"] is True and big["bytes"] > 200
        assert got["nodes"]["n1"]["output"] == {"text": "short"} == got["output"]
    finally:
        store.close()


async def test_a_failed_flush_is_written_by_the_next_write(tmp_path: Path) -> None:
    """Rows of a flush that fails (table gone for a while) are kept and stored at the end."""
    store = open_store(f"sqlite:///{tmp_path / 'flaky.db'}")
    try:
        wf = _chain(3)
        wf["nodes"]["n2"] = {"type": "std/delay", "config": {"duration": 300}}
        execution = Execution(parse(wf))
        recorder = Recorder(store, execution, flush_interval=0.02)
        execution.listeners.append(recorder)
        await recorder.start()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE node_runs RENAME TO node_runs_away")
        run = asyncio.ensure_future(execution.run())
        await asyncio.sleep(0.15)
        assert recorder.flushes == 0 and len(recorder._pending) == 2  # failed, kept
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE node_runs_away RENAME TO node_runs")
        await run
        await recorder.finish()
        got = read_execution(store, execution.id)
        assert got["status"] == "success" and set(got["nodes"]) == {"n0", "n1", "n2"}
    finally:
        store.close()


async def test_finish_raises_when_the_store_is_gone_but_the_run_ends(tmp_path: Path) -> None:
    """A store that disappears mid-run does not stop the run; ``finish()`` raises StoreError."""
    path = tmp_path / "gone.db"
    store = open_store(f"sqlite:///{path}")
    try:
        wf = _chain(3)
        wf["nodes"]["n1"] = {"type": "std/delay", "config": {"duration": 100}}
        execution = Execution(parse(wf))
        recorder = Recorder(store, execution, flush_interval=0.02)
        execution.listeners.append(recorder)
        await recorder.start()
        store.close()
        for file in tmp_path.glob("gone.db*"):
            file.unlink()  # the next connection opens a new, empty database
        result = await execution.run()
        assert result["status"] == "success"
        with pytest.raises(StoreError, match=execution.id):
            await recorder.finish()
    finally:
        store.close()


async def test_finish_raises_not_found_when_the_execution_row_is_gone(store: Store) -> None:
    """The final write names the execution when its row was deleted during the run."""
    execution = Execution(parse(_chain(1)))
    recorder = Recorder(store, execution)
    execution.listeners.append(recorder)
    await recorder.start()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM executions")
    result = await execution.run()
    assert result["status"] == "success"
    with pytest.raises(Conv3nError, match=execution.id):
        await recorder.finish()


async def test_starting_twice_raises_already_exists(store: Store) -> None:
    """The execution row is written once: a second ``start()`` for the same id raises."""
    execution = Execution(parse(_chain(1)))
    await Recorder(store, execution).start()
    with pytest.raises(AlreadyExists, match=execution.id):
        await Recorder(store, execution).start()
