"""Worker-pool fixtures: a temp SQLite store and pools of real worker processes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.executors.pool import WorkerPool
from conv3n_jupyter.store import Store, open_store
from conv3n_jupyter.store.executions import create_execution, read_execution

HELLO = json.loads(Path("templates/hello.conv3n.json").read_text())


def workflow(name: str, nodes: dict[str, Any], edges: list[Any] | None = None) -> dict[str, Any]:
    return {"conv3n": "1", "name": name, "nodes": nodes, "edges": edges or []}


def delay(seconds: float) -> dict[str, Any]:
    """A workflow that passes its params through a wait of ``seconds``."""
    return workflow(
        "wait",
        {
            "first": {"type": "std/transform", "config": {"input": "{{ $params }}"}},
            "wait": {"type": "std/delay", "config": {"duration": seconds, "unit": "s"}},
        },
        [{"source": "first", "target": "wait"}],
    )


def expression(text: str) -> dict[str, Any]:
    """A workflow whose one node evaluates ``text`` (a ``{{ }}`` template)."""
    return workflow("expr", {"calc": {"type": "std/transform", "config": {"input": text}}})


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conv3n.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def queue(store: Store) -> Callable[..., str]:
    def make(definition: dict[str, Any], params: dict[str, Any] | None = None, **kw: Any) -> str:
        return create_execution(
            store,
            workflow_name=definition["name"],
            status="queued",
            definition=definition,
            params=params,
            **kw,
        )

    return make


@asynccontextmanager
async def running_pool(db_url: str, store: Store, **kw: Any) -> AsyncIterator[WorkerPool]:
    options: dict[str, Any] = {
        "workers": 2,
        "execution_timeout": 60.0,
        "memory_limit_mb": 2048,
        "grace": 0.5,
    }
    options.update(kw)
    pool = WorkerPool(db_url, store=store, **options)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pool(db_url: str, store: Store) -> AsyncIterator[WorkerPool]:
    async with running_pool(db_url, store) as started:
        yield started


async def until_started(
    pool: WorkerPool, eid: str, node: str = "wait"
) -> tuple[list[dict[str, Any]], asyncio.Task[None]]:
    """Watch ``eid``'s events until ``node`` starts: the events so far and the watching task
    (it keeps appending to the list until the execution ends)."""
    seen: list[dict[str, Any]] = []
    reached = asyncio.Event()

    async def watch() -> None:
        async for event in pool.events(eid):
            seen.append(event)
            if event["type"] == "node_started" and event["node_id"] == node:
                reached.set()

    task = asyncio.ensure_future(watch())
    await asyncio.wait_for(reached.wait(), 20)
    return seen, task


async def store_status(
    store: Store, eid: str, wanted: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The row of ``eid`` once its status is ``wanted`` (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        row = await asyncio.to_thread(read_execution, store, eid)
        if row["status"] == wanted or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.05)
