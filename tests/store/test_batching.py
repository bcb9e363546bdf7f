"""Group commit: concurrent writes share transactions; a lone write waits for nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conv3n_jupyter.store import Store
from conv3n_jupyter.store.batching import Coalescer
from conv3n_jupyter.store.executions import (
    claim_executions,
    execution_row,
    insert_executions,
    read_execution,
)


async def test_calls_during_a_write_share_the_next_one() -> None:
    """50 calls at once: the first is written alone, the rest together, results in order."""
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(items)
        time.sleep(0.01)  # a transaction's time
        return [i * 10 for i in items]

    double = Coalescer(write)
    first = asyncio.ensure_future(double(0))
    await asyncio.sleep(0.003)  # its write is in flight
    results = await asyncio.gather(first, *(double(i) for i in range(1, 50)))
    assert results == [i * 10 for i in range(50)]
    assert batches == [[0], list(range(1, 50))]
    assert await double(7) == 70  # later, a lone call is its own batch
    assert batches[-1] == [7]


async def test_a_failed_write_fails_every_caller_of_that_batch_only() -> None:
    calls = 0
    gate = threading.Event()

    def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        gate.wait(1)
        return items

    echo = Coalescer(write)
    first = asyncio.ensure_future(echo("a"))
    await asyncio.sleep(0.01)
    crowd = [asyncio.ensure_future(echo(x)) for x in "bcd"]
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == "a"
    for task in crowd:
        with pytest.raises(RuntimeError, match="disk full"):
            await task
    assert await echo("e") == "e"


async def test_batched_inserts_and_claims_in_the_store(store: Store) -> None:
    """The API's group commit of new executions and a worker's of its claims."""
    create = Coalescer(lambda rows: insert_executions(store, rows))
    rows = [execution_row(workflow_name=f"w{i}", status="queued") for i in range(20)]
    ids = await asyncio.gather(*(create(row) for row in rows))
    assert ids == [row["id"] for row in rows]
    claim = Coalescer(lambda eids: claim_executions(store, eids, worker="w1"))
    claimed = await asyncio.gather(*(claim(eid) for eid in [*ids, ids[0]]))
    assert [c["id"] for c in claimed[:-1] if c] == ids
    assert claimed[-1] is None  # the same execution is never claimed twice
    assert read_execution(store, ids[5])["worker"] == "w1"
    assert create.batches < 20 and claim.batches < 21


async def test_final_writes_of_executions_that_end_together_share_a_transaction(
    store: Store,
) -> None:
    """Ten recorded runs finishing at once: two commits; a run whose row vanished fails alone."""
    from conv3n_jupyter.engine.executor import Execution
    from conv3n_jupyter.errors import NotFound
    from conv3n_jupyter.model import parse
    from conv3n_jupyter.store.recorder import Recorder, final_writes
    from conv3n_jupyter.store.tables import executions

    wf = parse(
        {"name": "w", "nodes": {"a": {"type": "std/noop", "config": {"value": 1}}}},
        source="test",
    )
    finisher = final_writes(store)
    runs = []
    for _ in range(10):
        execution = Execution(wf)
        recorder = Recorder(store, execution, finisher=finisher)
        execution.listeners.append(recorder)
        await recorder.start()
        await execution.run()
        runs.append(recorder)
    with store.begin() as conn:  # one execution's row is gone before its final write
        conn.execute(executions.delete().where(executions.c.id == runs[3].execution.id))
    first = asyncio.ensure_future(runs[0].finish())
    await asyncio.sleep(0)
    outcomes = await asyncio.gather(*(r.finish() for r in runs[1:]), return_exceptions=True)
    await first
    assert isinstance(outcomes[2], NotFound)
    assert [o for i, o in enumerate(outcomes) if i != 2] == [None] * 8
    for recorder in runs[:3] + runs[4:]:
        row = read_execution(store, recorder.execution.id)
        assert row["status"] == "success" and row["nodes"]["a"]["output"] == 1
    assert finisher.batches == 2 and finisher.items == 10
