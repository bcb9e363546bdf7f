"""The worker pool end to end: real worker processes on a temp SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from conv3n_jupyter.errors import Conv3nError
from conv3n_jupyter.executors.pool import WorkerPool
from conv3n_jupyter.executors.worker import shrink
from conv3n_jupyter.store import Store
from conv3n_jupyter.store.executions import read_execution

from .conftest import HELLO, delay, expression, running_pool, store_status, until_started


async def test_runs_executions_concurrently_on_two_workers(
    pool: WorkerPool, store: Store, queue: Callable[..., str]
) -> None:
    eids = [queue(delay(0.3), {"n": i}) for i in range(6)] + [queue(HELLO, {"name": "Ada"})]
    for eid in eids:
        await pool.submit(eid)
    seen: list[dict[str, Any]] = []

    async def watch() -> None:
        async for event in pool.events(eids[-1]):
            seen.append(event)

    watcher = asyncio.ensure_future(watch())
    loop = asyncio.get_running_loop()
    began = loop.time()
    results = await asyncio.gather(*(pool.wait(eid) for eid in eids))
    elapsed = loop.time() - began
    await watcher

    assert [r["status"] for r in results] == ["success"] * 7
    assert [r["output"] for r in results[:6]] == [{"n": i} for i in range(6)]
    assert results[-1]["output"]["greeting"] == "Hello, Ada!"
    assert elapsed < 6 * 0.3  # the waits overlapped
    rows = [read_execution(store, eid) for eid in eids]
    assert {row["status"] for row in rows} == {"success"}
    workers = {row["worker"].split("/")[0] for row in rows}
    assert workers == {"worker-1", "worker-2"}
    assert [e["type"] for e in seen] == [
        "execution_started",
        "node_started",
        "node_finished",
        "execution_finished",
    ]
    assert seen[-1]["data"]["status"] == "success"
    stats = pool.stats().to_dict()
    assert stats["kind"] == "worker-pool" and stats["alive"] and stats["restarts"] == 0
    assert [w["name"] for w in stats["workers"]] == ["worker-1", "worker-2"]
    assert all(w["alive"] and w["rss_mb"] > 0 and w["pid"] for w in stats["workers"])


async def test_cancels_a_running_and_a_queued_execution(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    async with running_pool(db_url, store, workers=1, max_per_worker=1) as pool:
        running, waiting = queue(delay(30)), queue(delay(30))
        await pool.submit(running)
        await pool.submit(waiting)
        _, watcher = await until_started(pool, running)
        assert pool.stats().queued == 1 and pool.stats().running == 1

        assert await pool.cancel(waiting, "not needed")
        queued_result = await pool.wait(waiting) if pool.has(waiting) else None
        assert queued_result is None or queued_result["status"] == "cancelled"
        row = read_execution(store, waiting)
        assert row["status"] == "cancelled" and row["error"]["message"] == "not needed"

        assert await pool.cancel(running, "stop it")
        result = await asyncio.wait_for(pool.wait(running), 10)
        assert result["status"] == "cancelled"
        assert (await store_status(store, running, "cancelled"))["status"] == "cancelled"
        await watcher
        assert not await pool.cancel(running)


async def test_a_killed_worker_crashes_its_executions_and_is_replaced(
    pool: WorkerPool, store: Store, queue: Callable[..., str]
) -> None:
    import os
    import signal

    eid = queue(delay(30))
    await pool.submit(eid)
    seen, watcher = await until_started(pool, eid)
    pid = int(read_execution(store, eid)["worker"].split("/")[1])
    pids_before = {w["pid"] for w in pool.stats().workers}
    os.kill(pid, signal.SIGKILL)

    result = await asyncio.wait_for(pool.wait(eid), 10)
    assert result["status"] == "crashed"
    assert "exited with signal SIGKILL" in result["error"]["message"]
    await watcher
    assert seen[-1]["type"] == "execution_finished" and seen[-1]["data"]["status"] == "crashed"
    row = read_execution(store, eid)
    assert (
        row["status"] == "crashed"
        and f"(pid {pid}) exited with signal SIGKILL" in (row["error"]["message"])
    )
    assert "; last finished node: " in row["error"]["message"]

    while len([w for w in pool.stats().workers if w["ready"]]) < 2:
        await asyncio.sleep(0.05)
    (new_pid,) = {w["pid"] for w in pool.stats().workers} - pids_before
    after = [queue(HELLO, {"name": f"n{i}"}) for i in range(4)]
    for other in after:
        await pool.submit(other)
    results = await asyncio.wait_for(asyncio.gather(*(pool.wait(e) for e in after)), 20)
    assert [r["status"] for r in results] == ["success"] * 4
    stats = pool.stats()
    assert stats.restarts == 1 and len(stats.workers) == 2
    assert pid not in {w["pid"] for w in stats.workers}
    taken_by = {read_execution(store, e)["worker"].split("/")[1] for e in after}
    assert str(new_pid) in taken_by


def _runqueue_wait() -> float:
    """Seconds this thread has spent ready to run but waiting for a CPU (Linux schedstat)."""
    import threading

    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def test_the_loop_keeps_answering_while_a_worker_dies(
    pool: WorkerPool, store: Store, queue: Callable[..., str]
) -> None:
    import os
    import signal

    eids = [queue(delay(30)) for _ in range(4)]
    for eid in eids:
        await pool.submit(eid)
    watchers = await asyncio.gather(*(until_started(pool, eid) for eid in eids))
    loop = asyncio.get_running_loop()
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        # A stall is the loop's own: the time the OS kept this thread waiting for a CPU
        # (the replacement workers starting on a 2-core machine) is not counted.
        nonlocal worst
        while not stop.is_set():
            before, queued = loop.time(), _runqueue_wait()
            await asyncio.sleep(0.01)
            stall = loop.time() - before - 0.01 - (_runqueue_wait() - queued)
            worst = max(worst, stall)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.1)
    for pid in {int(read_execution(store, e)["worker"].split("/")[1]) for e in eids}:
        os.kill(pid, signal.SIGKILL)
    results = await asyncio.wait_for(asyncio.gather(*(pool.wait(e) for e in eids)), 20)
    while len([w for w in pool.stats().workers if w["alive"]]) < 2:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    stop.set()
    await ticking
    await asyncio.gather(*(task for _, task in watchers))
    assert [r["status"] for r in results] == ["crashed"] * 4
    assert worst < 0.25, f"the loop stalled for {worst * 1000:.0f} ms"


async def test_a_blocked_worker_is_killed_past_the_timeout(
    pool: WorkerPool, store: Store, queue: Callable[..., str]
) -> None:
    # 9 million evaluations: the worker's loop is stuck in one expression for minutes.
    spin = expression("{{ lists.range(3000).map(x, lists.range(3000).map(y, x + y).size()) }}")
    eid = queue(spin, timeout=1.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await pool.submit(eid)
    result = await asyncio.wait_for(pool.wait(eid), 20)
    elapsed = loop.time() - began
    assert result["status"] == "crashed"
    message = result["error"]["message"]
    assert f"was killed: execution {eid} ran past the execution timeout of 1s" in message
    assert 1.5 <= elapsed < 6
    assert read_execution(store, eid)["status"] == "crashed"
    other = queue(HELLO)
    await pool.submit(other)
    assert (await asyncio.wait_for(pool.wait(other), 20))["status"] == "success"


async def test_a_worker_over_the_memory_limit_is_killed(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    # About 300 MiB of integers, held while a long map runs over them.
    hog = expression(
        "{{ (lists.range(1000000) + lists.range(1000000) + lists.range(1000000))"
        ".map(x, x + 1).size() }}"
    )
    async with running_pool(db_url, store, workers=1, memory_limit_mb=160) as pool:
        eid = queue(hog)
        await pool.submit(eid)
        result = await asyncio.wait_for(pool.wait(eid), 30)
        assert result["status"] == "crashed"
        assert "was killed: it used" in result["error"]["message"]
        assert "MiB, over the 160 MiB limit" in result["error"]["message"]
        assert read_execution(store, eid)["status"] == "crashed"
        assert pool.stats().restarts == 1


async def test_start_picks_up_executions_left_queued(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    eids = [queue(HELLO, {"name": f"n{i}"}) for i in range(3)]
    async with running_pool(db_url, store):
        rows = [await store_status(store, eid, "success") for eid in eids]
    assert [row["status"] for row in rows] == ["success"] * 3
    assert [row["output"]["name"] for row in rows] == ["n0", "n1", "n2"]


async def test_close_cancels_running_executions(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    async with running_pool(db_url, store, workers=1) as pool:
        eid = queue(delay(30))
        await pool.submit(eid)
        _, watcher = await until_started(pool, eid)
    await watcher
    row = read_execution(store, eid)
    assert row["status"] == "cancelled"
    assert not pool.stats().alive


async def test_a_result_too_long_for_the_protocol_is_read_from_the_store(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    big = expression("{{ lists.range(50000) }}")  # about 340 KB of JSON
    async with running_pool(db_url, store, workers=1, max_message=64 * 1024) as pool:
        eid = queue(big)
        await pool.submit(eid)
        seen: list[dict[str, Any]] = []

        async def watch() -> None:
            async for event in pool.events(eid):
                seen.append(event)

        watcher = asyncio.ensure_future(watch())
        result = await asyncio.wait_for(pool.wait(eid), 20)
        await watcher
    assert result["status"] == "success"
    assert result["output"] == list(range(50000))
    assert seen[-1]["type"] == "execution_finished"
    assert seen[-1]["data"]["status"] == "success"


def test_a_message_too_long_is_cut_down() -> None:
    event = {"type": "node_finished", "node_id": "a", "data": {"status": "success", "x": "y"}}
    cut = shrink({"op": "event", "id": "e1", "event": event}, 999)
    assert cut == {
        "op": "event",
        "id": "e1",
        "event": {**event, "data": {"status": "success", "truncated": True, "bytes": 999}},
    }
    assert shrink({"op": "done", "id": "e1", "result": {"a": 1}}, 999) == {
        "op": "done",
        "id": "e1",
        "result": None,
    }


async def test_a_segfault_in_the_expression_parser_crashes_only_its_worker(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    # The CEL parser recurses once per operator: on a 1 MiB stack (a common thread or container
    # limit) a chain of 2,041 additions (4,081 characters, within every expression limit)
    # overflows it and the process dies with SIGSEGV.
    resource = pytest.importorskip("resource")
    chain = expression("{{ 1" + "+1" * 2040 + " }}")
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (1024 * 1024, hard))  # inherited by the worker
    try:
        pool = WorkerPool(
            db_url, store=store, workers=1, execution_timeout=60, memory_limit_mb=2048, grace=0.5
        )
        await pool.start()
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
    try:
        slow, crashing = queue(delay(30)), queue(chain)
        await pool.submit(slow)
        await until_started(pool, slow)
        await pool.submit(crashing)
        results = await asyncio.wait_for(asyncio.gather(pool.wait(slow), pool.wait(crashing)), 20)
        assert [r["status"] for r in results] == ["crashed", "crashed"]
        assert all("exited with signal SIGSEGV" in r["error"]["message"] for r in results)
        # The replacement (with the default stack) runs the same expression.
        again = queue(chain)
        await pool.submit(again)
        result = await asyncio.wait_for(pool.wait(again), 20)
        assert result["status"] == "success" and result["output"] == 2041
    finally:
        await pool.close()


async def test_close_kills_a_worker_that_does_not_stop(
    db_url: str, store: Store, queue: Callable[..., str]
) -> None:
    spin = expression("{{ lists.range(3000).map(x, lists.range(3000).map(y, x + y).size()) }}")
    eid = queue(spin)
    loop = asyncio.get_running_loop()
    async with running_pool(db_url, store, workers=1) as pool:
        await pool.submit(eid)
        await store_status(store, eid, "running")
        began = loop.time()
    assert loop.time() - began < 5
    row = read_execution(store, eid)
    assert row["status"] == "crashed"
    assert "was killed: it did not stop in time when the service stopped" in row["error"]["message"]


async def test_start_fails_clearly_when_workers_cannot_start(store: Store) -> None:
    pool = WorkerPool(
        "mysql://nobody@127.0.0.1/none",
        store=store,
        workers=1,
        execution_timeout=60,
        memory_limit_mb=2048,
        grace=0.5,
    )
    with pytest.raises(
        Conv3nError, match=r"did not start: worker 1 \(pid \d+\) exited with code 1"
    ):
        await pool.start()
    assert not pool.stats().alive
