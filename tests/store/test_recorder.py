"""Recording runs: rows before the run, node runs as nodes finish, the final status."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.model import parse
from conv3n_jupyter.store import Recorder, Store, record_run
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


async def test_recording_costs_little_next_to_the_run(store: Store) -> None:
    """Recording a 200-node run on SQLite adds a bounded cost (generous bound: shared CI cores)."""
    wf = parse(_chain(200))
    await Execution(wf).run()  # warm the plan and the block imports
    await record_run(store, wf)
    t0 = time.perf_counter()
    for _ in range(5):
        await Execution(wf).run()
    bare = (time.perf_counter() - t0) / 5
    t0 = time.perf_counter()
    for _ in range(5):
        await record_run(store, wf)
    stored = (time.perf_counter() - t0) / 5
    assert stored < bare + 0.25, (bare, stored)
