"""Running one queued execution from the store: shared by worker processes and in-process mode.

The execution row exists already (status ``queued``, written by the API); :func:`run_queued`
claims it, builds the workflow from the stored definition, re-uses the results of the
execution it retries, runs it with a :class:`~conv3n_jupyter.store.recorder.Recorder` and
returns the result dict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._parse_cache import ParseCache
from ..engine.events import Event
from ..errors import Conv3nError

if TYPE_CHECKING:
    from ..engine.executor import Execution
    from ..engine.runtime import Runtime
    from ..store.database import Store
    from ..store.recorder import Finisher


_CACHE = ParseCache()  # one worker runs the same few workflows again and again


def _failed_result(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    return {
        "execution_id": row["id"],
        "workflow": row.get("workflow_name"),
        "status": "error",
        "started_at": None,
        "duration_ms": 0.0,
        "params": row.get("params") or {},
        "nodes": {},
        "output": None,
        "error": {"type": type(exc).__name__, "message": str(exc), "node": None},
    }


async def run_queued(
    store: Store,
    execution_id: str,
    *,
    runtime: Runtime,
    worker: str,
    on_event: Callable[[Event], Any] | None = None,
    started: Callable[[Execution], Any] | None = None,
    default_timeout: float | None = None,
    claim: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None,
    finisher: Finisher | None = None,
) -> dict[str, Any] | None:
    """Claim and run one queued execution; its result, or ``None`` if it was not queued.

    ``started(execution)`` is called before the run (so that a cancel can reach it);
    ``on_event`` receives every engine event; ``claim`` replaces the store call that claims
    the execution and ``finisher`` the recorder's final write (both group commits in a worker). A workflow or parameter problem found only now ends the execution as
    ``error`` (the API validates before it queues, so this is rare).
    """
    from ..engine.executor import Execution
    from ..store.executions import claim_execution, previous_results, update_execution
    from ..store.recorder import Recorder

    if claim is not None:  # e.g. a Coalescer claiming many in one transaction
        row = await claim(execution_id)
    else:
        row = await asyncio.to_thread(claim_execution, store, execution_id, worker=worker)
    if row is None:
        return None
    try:
        if row["definition"] is None:
            raise Conv3nError(
                f"execution {execution_id!r}: workflow {row['workflow_id']!r} version"
                f" {row['workflow_version']} is not in the store"
            )
        source = (
            f"workflow {row['workflow_id']!r} v{row['workflow_version']}"
            if row["workflow_id"]
            else "a workflow sent to the API"
        )
        wf = _CACHE.parse(row["definition"], source)
        previous = None
        if row["retry_of"]:
            previous = await asyncio.to_thread(previous_results, store, row["retry_of"])
        execution = Execution(
            wf,
            row["params"],
            trigger=row["trigger"],
            runtime=runtime,
            execution_id=execution_id,
            timeout=row["timeout"] if row["timeout"] is not None else default_timeout,
            start_from=row["start_from"],
            previous=previous,
        )
    except Conv3nError as exc:
        result = _failed_result(row, exc)
        await asyncio.to_thread(
            update_execution,
            store,
            execution_id,
            status="error",
            finished_at=time.time(),
            duration_ms=0.0,
            error=result["error"],
        )
        return result
    recorder = Recorder(
        store,
        execution,
        workflow_id=row["workflow_id"],
        workflow_version=row["workflow_version"],
        finisher=finisher,
    )
    execution.listeners.append(recorder)
    if on_event is not None:
        execution.listeners.append(on_event)
    if started is not None:
        started(execution)
    try:
        return await execution.run()
    finally:
        await recorder.finish()
