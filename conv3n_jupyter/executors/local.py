"""``--workers 0``: executions run on the calling process's event loop (development, tests).

User expressions and code then run inside the API process: use it only for development.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from .base import Executor, ExecutorStats

if TYPE_CHECKING:
    from ..engine.executor import Execution
    from ..engine.runtime import Runtime
    from ..store.database import Store


class InProcessExecutor(Executor):
    """Runs queued executions as tasks of the current event loop.

    >>> executor = InProcessExecutor(store, max_concurrent=64)
    """

    def __init__(
        self,
        store: Store,
        *,
        runtime: Runtime | None = None,
        max_concurrent: int = 64,
        default_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self._runtime = runtime
        self._own_runtime = runtime is None
        self.default_timeout = default_timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, Execution] = {}
        self._waiting = 0
        self._name = f"local-{os.getpid()}"

    async def start(self) -> None:
        from ..engine.runtime import Runtime
        from ..store.executions import read_queued

        if self._runtime is None:
            self._runtime = Runtime(store=self.store)
        for eid in await asyncio.to_thread(read_queued, self.store):
            await self.submit(eid)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for execution in list(self._running.values()):
            execution.cancel("the service stopped")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_runtime and self._runtime is not None:
            await self._runtime.aclose()
            self._runtime = None

    def stats(self) -> ExecutorStats:
        return ExecutorStats(
            kind="in-process",
            workers=[{"name": self._name, "pid": os.getpid(), "running": len(self._running)}],
            queued=self._waiting,
            running=len(self._running),
        )

    async def _submit(self, execution_id: str) -> None:
        if execution_id in self._tasks:
            return
        self._tasks[execution_id] = asyncio.ensure_future(self._run(execution_id))

    async def _run(self, execution_id: str) -> None:
        from ..store.executions import read_execution
        from .base import crashed_result

        self._waiting += 1
        try:
            async with self._slots:
                self._waiting -= 1
                result = await self._run_queued(execution_id)
            if result is None:  # cancelled before it started, or taken elsewhere
                row = await asyncio.to_thread(read_execution, self.store, execution_id)
                result = crashed_result(row)
            self._resolve(execution_id, result)
        except asyncio.CancelledError:
            self._resolve(execution_id, {"execution_id": execution_id, "status": "cancelled"})
            raise
        except Exception as exc:  # a store failure: the waiter hears of it
            self._resolve(
                execution_id,
                {
                    "execution_id": execution_id,
                    "status": "error",
                    "error": {"type": type(exc).__name__, "message": str(exc), "node": None},
                },
            )
        finally:
            self._tasks.pop(execution_id, None)
            self._running.pop(execution_id, None)

    async def _run_queued(self, execution_id: str) -> dict[str, Any] | None:
        from ._runner import run_queued

        assert self._runtime is not None

        def started(execution: Execution) -> None:
            self._running[execution_id] = execution

        return await run_queued(
            self.store,
            execution_id,
            runtime=self._runtime,
            worker=self._name,
            on_event=lambda event: self._publish(execution_id, event.to_dict()),
            started=started,
            default_timeout=self.default_timeout,
        )

    async def _cancel(self, execution_id: str, reason: str) -> bool:
        from ..store.executions import cancel_queued

        execution = self._running.get(execution_id)
        if execution is not None:
            execution.cancel(reason)
            return True
        if execution_id not in self._tasks:
            return False
        await asyncio.to_thread(cancel_queued, self.store, execution_id, reason=reason)
        return True
