"""The in-process executor (``conv3n serve --workers 0``): the executor interface end to end
on a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.executors.local import InProcessExecutor
from conv3n_jupyter.store import Store, open_store
from conv3n_jupyter.store.executions import create_execution, read_execution

HELLO = json.loads(Path("templates/hello.conv3n.json").read_text())
SLOW = {
    "conv3n": "1",
    "name": "slow",
    "nodes": {
        "first": {"type": "std/transform", "config": {"input": "{{ $params }}"}},
        "wait": {"type": "std/delay", "config": {"duration": 30, "unit": "s"}},
    },
    "edges": [{"source": "first", "target": "wait"}],
}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = open_store(f"sqlite:///{tmp_path / 'conv3n.db'}")
    yield opened
    opened.close()


@pytest.fixture
async def executor(store: Store) -> AsyncIterator[InProcessExecutor]:
    ex = InProcessExecutor(store, max_concurrent=2)
    await ex.start()
    yield ex
    await ex.close()


def queue(store: Store, definition: dict[str, Any], params: dict[str, Any] | None = None) -> str:
    return create_execution(
        store,
        workflow_name=definition["name"],
        status="queued",
        definition=definition,
        params=params,
    )


async def test_runs_a_queued_execution_and_streams_its_events(
    store: Store, executor: InProcessExecutor
) -> None:
    eid = queue(store, HELLO, {"name": "Ada"})
    await executor.submit(eid)
    seen: list[str] = []

    async def watch() -> None:
        async for event in executor.events(eid):
            seen.append(event["type"])

    watcher = asyncio.ensure_future(watch())
    result = await executor.wait(eid)
    await watcher
    assert result["status"] == "success" and result["output"]["greeting"] == "Hello, Ada!"
    assert seen[0] == "execution_started" and seen[-1] == "execution_finished"
    row = read_execution(store, eid)
    assert row["status"] == "success" and row["nodes"]["greet"]["status"] == "success"
    assert not executor.has(eid)
    assert (await executor.wait(eid))["status"] == "success"  # a late wait still answers
    with pytest.raises(LookupError, match="not running"):
        await executor.wait("never-submitted")


async def test_cancels_running_and_queued_executions(
    store: Store, executor: InProcessExecutor
) -> None:
    """Two slots: two delays run, the third waits; cancelling each ends it as cancelled."""
    ids = [queue(store, SLOW) for _ in range(3)]
    for eid in ids:
        await executor.submit(eid)
    for _ in range(100):
        if executor.stats().running == 2:
            break
        await asyncio.sleep(0.02)
    stats = executor.stats()
    assert (stats.running, stats.queued) == (2, 1)
    waiters = asyncio.gather(*(executor.wait(e) for e in ids))
    for eid in ids:
        assert await executor.cancel(eid) is True
    results = await asyncio.wait_for(waiters, 10)
    assert [r["status"] for r in results] == ["cancelled"] * 3
    assert [read_execution(store, e)["status"] for e in ids] == ["cancelled"] * 3
    assert await executor.cancel("no-such-execution") is False


async def test_start_resubmits_executions_left_queued(store: Store) -> None:
    """Queued executions never started, so a new executor runs them."""
    eid = queue(store, HELLO)
    ex = InProcessExecutor(store)
    await ex.start()
    try:
        result = await asyncio.wait_for(ex.wait(eid), 10)
    finally:
        await ex.close()
    assert result["status"] == "success"


async def test_a_retry_reuses_the_upstream_results(
    store: Store, executor: InProcessExecutor, tmp_path: Path
) -> None:
    """The retried execution starts at the failed node; upstream output comes from the store."""
    wf = {
        "conv3n": "1",
        "name": "retry-me",
        "nodes": {
            "stamp": {"type": "std/transform", "config": {"input": "{{ $params }}"}},
            "check": {
                "type": "std/condition",
                "config": {"expression": "$params.ok == true"},
            },
        },
        "edges": [{"source": "stamp", "target": "check"}],
    }
    first = queue(store, wf, {"ok": False})
    await executor.submit(first)
    assert (await executor.wait(first))["status"] in ("success", "error")
    again = create_execution(
        store,
        workflow_name="retry-me",
        status="queued",
        definition=wf,
        params={"ok": True},
        retry_of=first,
        start_from="check",
    )
    await executor.submit(again)
    result = await executor.wait(again)
    assert result["status"] == "success"
    assert result["nodes"]["stamp"].get("reused") is True
    assert result["nodes"]["check"].get("reused") is not True


async def test_a_late_watcher_gets_the_events_so_far_first(
    store: Store, executor: InProcessExecutor
) -> None:
    """Watching a running execution replays what already happened, then goes on live."""
    eid = queue(store, SLOW)
    await executor.submit(eid)
    for _ in range(200):
        if read_execution(store, eid)["status"] == "running" and executor.stats().running:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # "first" has finished, "wait" is waiting
    seen: list[tuple[str, str | None]] = []

    async def watch() -> None:
        async for event in executor.events(eid):
            seen.append((event["type"], event["node_id"]))

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.05)
    assert seen[:3] == [
        ("execution_started", None),
        ("node_started", "first"),
        ("node_finished", "first"),
    ]
    await executor.cancel(eid)
    await asyncio.wait_for(watcher, 10)
    assert seen[-1] == ("execution_finished", None)
