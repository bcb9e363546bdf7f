"""The executor interface: submit an execution, cancel it, wait for it, watch it, report health.

Every implementation shares :class:`Executor`'s bookkeeping: a future per submitted execution
(its result dict, the same JSON as ``conv3n run --output json``) and a fan-out of live events
to watchers (the API's server-sent events). Subclasses implement ``_submit``, ``_cancel``,
``start``, ``close`` and ``stats``, and call :meth:`Executor._publish` / :meth:`Executor._resolve`.
"""

from __future__ import annotations

import abc
import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

_WATCH_BUFFER = 10_000  # events kept per watcher before the oldest are dropped
_FINISHED = "execution_finished"
_REPLAY = 1_000  # past events of a running execution replayed to a new watcher
_RECENT = 256  # results of ended executions kept for late wait() calls


@dataclass
class ExecutorStats:
    """What an executor reports for ``/health`` and ``/metrics``."""

    kind: str
    workers: list[dict[str, Any]] = field(default_factory=list)
    queued: int = 0  # submitted, waiting for a worker slot
    running: int = 0
    restarts: int = 0  # workers replaced since start
    alive: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "alive": self.alive,
            "queued": self.queued,
            "running": self.running,
            "restarts": self.restarts,
            "workers": self.workers,
        }


class Executor(abc.ABC):
    """Runs executions recorded in the store as ``queued``.

    >>> executor = InProcessExecutor(store)
    >>> await executor.start()
    >>> eid = create_execution(store, workflow_name="hello", status="queued", definition=...)
    >>> await executor.submit(eid)
    >>> result = await executor.wait(eid)
    >>> await executor.close()
    """

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._watchers: dict[str, list[asyncio.Queue[dict[str, Any] | None]]] = {}
        # Process-wide observers (the API's metrics and logs): called with the execution id
        # and every event dict, resp. every final result; they must be quick and not raise.
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.on_event: Callable[[str, dict[str, Any]], Any] | None = None
        self.on_result: Callable[[str, dict[str, Any]], Any] | None = None

    # -- the interface ------------------------------------------------------------------
    @abc.abstractmethod
    async def start(self) -> None:
        """Start workers; executions left ``queued`` in the store are submitted again."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop workers; running executions are cancelled (and recorded so)."""

    @abc.abstractmethod
    def stats(self) -> ExecutorStats:
        """Liveness and load: workers, queue depth, running executions."""

    async def submit(self, execution_id: str) -> None:
        """Hand over a ``queued`` execution; returns once it is accepted (not finished)."""
        self._future(execution_id)
        await self._submit(execution_id)

    async def cancel(self, execution_id: str, reason: str = "cancelled by request") -> bool:
        """Ask a queued or running execution to stop; ``False`` if this executor lacks it."""
        return await self._cancel(execution_id, reason)

    async def wait(self, execution_id: str) -> dict[str, Any]:
        """The execution's result once it ends (``status`` may be ``crashed``).

        The results of the last few hundred ended executions are kept for a late call; older
        or unknown ones raise ``LookupError``: read a finished execution from the store.
        """
        fut = self._futures.get(execution_id)
        if fut is None:
            recent = self._recent.get(execution_id)
            if recent is not None:
                return recent
            raise LookupError(f"execution {execution_id!r} is not running in this executor")
        return await asyncio.shield(fut)

    def has(self, execution_id: str) -> bool:
        """Whether this executor runs (or queues) the execution now."""
        fut = self._futures.get(execution_id)
        return fut is not None and not fut.done()

    async def events(self, execution_id: str) -> AsyncIterator[dict[str, Any]]:
        """The events of one execution, ending after its ``execution_finished`` event.

        A watcher that comes while the execution runs first gets the events so far (the last
        :data:`_REPLAY` of them), then live ones. Ends at once when this executor does not
        run the execution.
        """
        if not self.has(execution_id):
            return
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_WATCH_BUFFER)
        for past in self._history.get(execution_id, ()):
            queue.put_nowait(past)
        self._watchers.setdefault(execution_id, []).append(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            queues = self._watchers.get(execution_id)
            if queues is not None and queue in queues:
                queues.remove(queue)
                if not queues:
                    del self._watchers[execution_id]

    # -- for implementations --------------------------------------------------------------
    @abc.abstractmethod
    async def _submit(self, execution_id: str) -> None: ...

    @abc.abstractmethod
    async def _cancel(self, execution_id: str, reason: str) -> bool: ...

    def _future(self, execution_id: str) -> asyncio.Future[dict[str, Any]]:
        fut = self._futures.get(execution_id)
        if fut is None:
            fut = self._futures[execution_id] = asyncio.get_running_loop().create_future()
        return fut

    def _publish(self, execution_id: str, event: dict[str, Any]) -> None:
        """Pass one event dict (``Event.to_dict()`` shape) to the execution's watchers."""
        if self.on_event is not None:
            self.on_event(execution_id, event)
        history = self._history.get(execution_id)
        if history is None:
            history = self._history[execution_id] = deque(maxlen=_REPLAY)
        history.append(event)
        for queue in self._watchers.get(execution_id, ()):
            if queue.full():  # a watcher that does not read loses its oldest events
                queue.get_nowait()
            queue.put_nowait(event)

    def _resolve(self, execution_id: str, result: dict[str, Any]) -> None:
        """The execution ended: wake waiters, end watchers' streams, forget it."""
        if self.on_result is not None:
            self.on_result(execution_id, result)
        self._history.pop(execution_id, None)
        fut = self._futures.pop(execution_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)
        # Kept a little while, so that a wait() that comes just after the end still answers.
        self._recent[execution_id] = result
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        for queue in self._watchers.pop(execution_id, []):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def _pending(self) -> list[str]:
        return [eid for eid, fut in self._futures.items() if not fut.done()]


def crashed_result(row: dict[str, Any]) -> dict[str, Any]:
    """A result dict for an execution whose worker died (from its store row)."""
    return {
        "execution_id": row["id"],
        "workflow": row.get("workflow_name"),
        "status": row.get("status", "crashed"),
        "started_at": None,
        "duration_ms": row.get("duration_ms"),
        "params": row.get("params") or {},
        "nodes": row.get("nodes", {}),
        "output": row.get("output"),
        "error": row.get("error"),
    }
