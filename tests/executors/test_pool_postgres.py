"""The worker pool on PostgreSQL: workers claim, record and crash executions in a real server.

Skipped when PostgreSQL is unreachable, except under CI (``$CI`` set), where it fails.
"""

from __future__ import annotations

import asyncio
import os
import signal

from conv3n_jupyter.store import open_store
from conv3n_jupyter.store.executions import create_execution, read_execution
from tests.store.conftest import pg_schema

from .conftest import HELLO, delay, running_pool, store_status


async def test_runs_and_crashes_executions_on_postgresql() -> None:
    with pg_schema("conv3n_pool") as url:
        store = open_store(url)
        try:

            def queue(definition: dict[str, object], **params: object) -> str:
                return create_execution(
                    store,
                    workflow_name=str(definition["name"]),
                    status="queued",
                    definition=definition,
                    params=params,
                )

            async with running_pool(url, store) as pool:
                eids = [queue(HELLO, name=f"n{i}") for i in range(8)]
                slow = queue(delay(30))
                for eid in [*eids, slow]:
                    await pool.submit(eid)
                results = await asyncio.wait_for(
                    asyncio.gather(*(pool.wait(eid) for eid in eids)), 20
                )
                assert [r["output"]["name"] for r in results] == [f"n{i}" for i in range(8)]
                await store_status(store, slow, "running")
                pid = int(read_execution(store, slow)["worker"].split("/")[1])
                os.kill(pid, signal.SIGKILL)
                crashed = await asyncio.wait_for(pool.wait(slow), 10)
            assert crashed["status"] == "crashed"
            rows = [read_execution(store, eid) for eid in eids]
            assert {row["status"] for row in rows} == {"success"}
            assert len({row["worker"] for row in rows}) == 2
            row = read_execution(store, slow)
            assert (
                row["status"] == "crashed"
                and "exited with signal SIGKILL" in row["error"]["message"]
            )
        finally:
            store.close()
