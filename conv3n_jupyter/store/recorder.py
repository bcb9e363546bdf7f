"""Recording an execution into the store as it runs, with batched writes.

The :class:`Recorder` is an engine listener. The execution row is written before the run
starts; finished nodes are buffered and written in one transaction at most every
``flush_interval`` seconds, in a worker thread so that the event loop never waits on the
database; the last batch and the final status, output and error go in one transaction at the
end. A crash loses at most one interval of node rows, and the execution stays ``running``
until :func:`~conv3n_jupyter.store.maintenance.mark_crashed` marks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import events as ev
from ..engine.executor import Execution
from ..model import Workflow, load, parse
from .executions import create_execution, update_execution, upsert_node_runs
from .workflows import read_workflow

if TYPE_CHECKING:
    from ..engine.events import Event
    from .database import Store

_FINISHED = (ev.NODE_FINISHED, ev.NODE_SKIPPED)


class Recorder:
    """An engine listener that stores one execution and its node runs.

    >>> recorder = Recorder(store, execution)
    >>> execution.listeners.append(recorder)
    >>> await recorder.start()
    >>> result = await execution.run()
    >>> await recorder.finish()
    """

    def __init__(
        self,
        store: Store,
        execution: Execution,
        *,
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        flush_interval: float = 0.1,
    ) -> None:
        self.store = store
        self.execution = execution
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.flush_interval = flush_interval
        self.flushes = 0
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def start(self) -> None:
        """Write the execution row (status ``running``) before the run starts."""
        ex = self.execution
        await asyncio.to_thread(
            create_execution,
            self.store,
            execution_id=ex.id,
            workflow_name=ex.workflow.name,
            workflow_id=self.workflow_id,
            workflow_version=self.workflow_version,
            trigger=ex.trigger,
            params=ex.params,
        )

    def __call__(self, event: Event) -> None:
        if event.type in _FINISHED and event.execution_id == self.execution.id:
            nid = event.node_id or ""
            # The engine stores the result before it emits the event; keep the dict itself.
            self._pending.append((nid, self.execution.results.get(nid, {})))
            if self._timer is None and self._flushing is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.flush_interval, self._kick)

    def _kick(self) -> None:
        self._timer = None
        if self._pending and self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._write, batch, None)
        except (
            Exception
        ) as exc:  # kept and raised by finish(): a store outage must not kill the run
            self._failure = exc
        finally:
            self._flushing = None
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self._kick)

    def _write(self, batch: list[tuple[str, dict[str, Any]]], final: dict[str, Any] | None) -> None:
        rows = [
            {
                "node_id": nid,
                "attempt": r.get("attempts", 0),
                "status": r.get("status"),
                "port": r.get("port"),
                "output": r.get("data"),
                "logs": r.get("logs"),
                "error": r.get("error"),
                "started_at": r.get("started_at"),
                "duration_ms": r.get("duration_ms"),
            }
            for nid, r in batch
        ]
        with self.store.begin() as conn:
            upsert_node_runs(conn, self.execution.id, rows)
            fields = dict(final or {})
            if batch:
                fields["last_node"] = batch[-1][0]
            if fields:
                update_execution(conn, self.execution.id, **fields)
        self.flushes += 1

    async def finish(self) -> None:
        """Write the remaining node runs and the final status, output and error."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await self._flushing
        ex = self.execution
        final = {
            "status": ex.status,
            "finished_at": ex.finished_at or None,
            "duration_ms": ex.result()["duration_ms"],
            "error": ex.error,
            "output": ex.output() if ex.results else None,
        }
        batch, self._pending = self._pending, []
        await asyncio.to_thread(self._write, batch, final)
        if self._failure is not None:
            raise self._failure

    def __repr__(self) -> str:
        return (
            f"<Recorder {self.execution.id[:8]} {self.flushes} flushes"
            f" {len(self._pending)} pending>"
        )


async def record_run(
    store: Store,
    workflow: Workflow | str | Path | dict[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    flush_interval: float = 0.1,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run a workflow and record it in the store; returns the execution result.

        >>> store = open_store("sqlite:///./conv3n.db")
        >>> result = await record_run(store, "templates/hello.conv3n.json", {"name": "Ada"})
        >>> read_execution(store, result["execution_id"])["status"]
        'success'

    Without ``workflow``, the saved workflow ``workflow_id`` runs (its current version, or
    ``workflow_version``). Other keyword arguments are those of :class:`Execution`.
    """
    if workflow is None:
        if workflow_id is None:
            raise TypeError("record_run needs a workflow or a workflow_id")
        saved = await asyncio.to_thread(read_workflow, store, workflow_id, version=workflow_version)
        wf = parse(saved["definition"], source=f"workflow {workflow_id!r}")
        workflow_version = saved["version"]
    else:
        wf = workflow if isinstance(workflow, Workflow) else load(workflow)
    execution = Execution(wf, params, **kwargs)
    recorder = Recorder(
        store,
        execution,
        workflow_id=workflow_id,
        workflow_version=workflow_version,
        flush_interval=flush_interval,
    )
    execution.listeners.insert(0, recorder)
    await recorder.start()
    try:
        return await execution.run()
    finally:
        await recorder.finish()
