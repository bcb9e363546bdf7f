"""``conv3n serve --workers N``: a supervised pool of worker processes.

The API process never evaluates a user's expression or code: it records an execution as
``queued`` and submits its id here. The supervisor (on the API's event loop) hands ids to the
least-loaded worker over a socket pair (see :mod:`~conv3n_jupyter.executors._protocol`); the
worker claims the row, runs it and records it in the store, and streams its events back.

A worker that exits (a segfault in native code), uses more memory than ``memory_limit_mb``
or runs an execution past its timeout plus ``grace`` (its loop is blocked, so the engine's
own cooperative timeout could not stop it) is killed and replaced; the executions it was
running are marked ``crashed`` in the store with the reason. Nothing here blocks the loop:
store calls run in threads.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import Conv3nError
from . import _protocol as proto
from ._supervision import READY_TIMEOUT, MiB, Run, WorkerHandle, spawn
from .base import Executor, ExecutorStats, crashed_result

if TYPE_CHECKING:
    from ..store.database import Store

_MONITOR_EVERY = 0.25
log = logging.getLogger("conv3n.executors")


class WorkerPool(Executor):
    """Runs queued executions in ``workers`` supervised processes.

    >>> pool = WorkerPool("sqlite:///conv3n.db", workers=4, store=store,
    ...                   execution_timeout=3600, memory_limit_mb=2048)
    >>> await pool.start()
    >>> await pool.submit(eid)
    >>> result = await pool.wait(eid)
    >>> await pool.close()

    ``store`` is the API's own store (already migrated): the supervisor marks crashed and
    cancels queued executions with it. ``max_per_worker`` executions run at once in one worker;
    more wait in the supervisor's queue (``stats().queued``). ``env`` replaces the workers'
    environment (``CONV3N_DATABASE_URL`` is always set to ``store_url``).
    """

    def __init__(
        self,
        store_url: str,
        *,
        workers: int,
        store: Store,
        execution_timeout: float | None,
        memory_limit_mb: int,
        max_per_worker: int = 64,
        grace: float = 5.0,
        env: Mapping[str, str] | None = None,
        max_message: int = proto.MAX_MESSAGE,
    ) -> None:
        super().__init__()
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, not {workers}")
        self.store_url = store_url
        self.size = workers
        self.store = store
        self.execution_timeout = execution_timeout or None
        self.memory_limit_mb = memory_limit_mb
        self.max_per_worker = max_per_worker
        self.grace = grace
        self.max_message = max_message
        self._env = dict(os.environ if env is None else env)
        self._env["CONV3N_DATABASE_URL"] = store_url
        self._workers: dict[int, WorkerHandle] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._restarts = 0
        self._closing = False
        self._closed = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._spawning: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the workers, wait until each is ready, then resume queued executions."""
        from ..store.executions import read_queued

        for index in range(1, self.size + 1):
            await self._spawn(index)
        self._monitor = asyncio.ensure_future(self._watch())
        for worker in list(self._workers.values()):
            try:
                await asyncio.wait_for(asyncio.shield(worker.ready), READY_TIMEOUT)
            except (asyncio.TimeoutError, Conv3nError) as exc:
                await self.close()
                raise Conv3nError(f"the worker pool did not start: {exc}") from exc
        for eid in await asyncio.to_thread(read_queued, self.store):
            await self.submit(eid)

    async def close(self) -> None:
        """Stop the workers: running executions are cancelled (and recorded so).

        A worker still running after ``grace`` seconds is killed and its executions are
        marked ``crashed``. Executions waiting in the supervisor stay ``queued`` in the store.
        """
        self._closing = True
        self._closed.set()
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        for task in list(self._spawning):
            await asyncio.gather(task, return_exceptions=True)
        workers = list(self._workers.values())
        for worker in workers:
            worker.send({"op": "stop"})
        tasks = [w.task for w in workers if w.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.grace)
            for worker in workers:
                if worker.task in late:
                    worker.kill("it did not stop in time when the service stopped")
            await asyncio.gather(*tasks, return_exceptions=True)
        queued, self._queue = list(self._queue), collections.deque()
        for eid in queued:
            self._resolve(eid, {"execution_id": eid, "status": "queued"})

    def stats(self) -> ExecutorStats:
        """Workers (name, pid, alive, running, rss_mb, started_at), queue depth, restarts."""
        now = time.monotonic()
        workers = [
            {
                "name": w.name,
                "pid": w.proc.pid,
                "alive": w.alive,
                "ready": w.is_ready,
                "running": len(w.runs),
                "rss_mb": round(w.rss / MiB, 1),
                "started_at": w.started_at,
                "last_beat_s": round(now - w.last_beat, 2),
            }
            for w in sorted(self._workers.values(), key=lambda w: w.index)
        ]
        return ExecutorStats(
            kind="worker-pool",
            workers=workers,
            queued=len(self._queue),
            running=sum(len(w.runs) for w in self._workers.values()),
            restarts=self._restarts,
            alive=not self._closing and any(w["alive"] for w in workers),
        )

    # -- submit and cancel ---------------------------------------------------------------
    async def _submit(self, execution_id: str) -> None:
        if execution_id in self._queue or self._owner(execution_id) is not None:
            return
        if self._closing:  # stays queued in the store for the next start
            self._resolve(execution_id, {"execution_id": execution_id, "status": "queued"})
            return
        self._queue.append(execution_id)
        self._dispatch()

    async def _cancel(self, execution_id: str, reason: str) -> bool:
        from ..store.executions import cancel_queued

        if execution_id in self._queue:
            self._queue.remove(execution_id)
            await asyncio.to_thread(cancel_queued, self.store, execution_id, reason=reason)
            await self._resolve_from_store(execution_id, publish=True)
            return True
        worker = self._owner(execution_id)
        if worker is None:
            return False
        # Not claimed yet: the store cancels it and the worker will find it gone.
        if not await asyncio.to_thread(cancel_queued, self.store, execution_id, reason=reason):
            worker.send({"op": "cancel", "id": execution_id, "reason": reason})
        return True

    def _owner(self, execution_id: str) -> WorkerHandle | None:
        for worker in self._workers.values():
            if execution_id in worker.runs:
                return worker
        return None

    def _dispatch(self) -> None:
        while self._queue and not self._closing:
            free = [
                w
                for w in self._workers.values()
                if w.alive and w.is_ready and len(w.runs) < self.max_per_worker
            ]
            if not free:
                return
            worker = min(free, key=lambda w: (len(w.runs), w.index))
            eid = self._queue.popleft()
            timeout = self.execution_timeout
            deadline = time.monotonic() + timeout + self.grace if timeout else None
            worker.runs[eid] = Run(deadline=deadline, timeout=timeout)
            worker.send({"op": "run", "id": eid})

    # -- workers --------------------------------------------------------------------------
    async def _spawn(self, index: int) -> None:
        worker = await spawn(
            index, env=self._env, timeout=self.execution_timeout, max_message=self.max_message
        )
        self._workers[index] = worker
        worker.task = asyncio.ensure_future(self._serve(worker))

    async def _serve(self, worker: WorkerHandle) -> None:
        """Read one worker's messages until its end closes; then retire it."""
        try:
            while True:
                try:
                    line = await worker.reader.readline()
                except ValueError:  # a line past the reader's limit
                    worker.kill("it sent a message over the protocol's size limit")
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                try:
                    message = proto.decode(line)
                except ValueError:
                    worker.kill(f"it sent a malformed message: {line[:80]!r}")
                    break
                await self._handle(worker, message)
        except Exception as exc:  # a bug here must not leave the worker unsupervised
            worker.kill(f"its messages could not be handled: {exc!r}")
        except asyncio.CancelledError:  # the loop is going away without close()
            worker.kill("the supervisor stopped")
            worker.writer.close()
            raise
        await self._retire(worker)

    async def _handle(self, worker: WorkerHandle, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "beat":
            worker.last_beat = time.monotonic()
            if isinstance(message.get("rss"), int):  # the monitor's own reading overrides it
                worker.rss = message["rss"]
            return
        if op == "ready":
            if not worker.ready.done():
                worker.ready.set_result(None)
            self._dispatch()
            return
        eid = str(message.get("id"))
        run = worker.runs.get(eid)
        if run is None:
            return
        if op == "event":
            event = message["event"]
            if event.get("type") == "execution_finished":
                run.finished_seen = True
            self._publish(eid, event)
        elif op == "started":
            timeout = message.get("timeout")
            run.timeout = float(timeout) if timeout else None
            run.deadline = time.monotonic() + run.timeout + self.grace if run.timeout else None
        elif op == "done":
            result = message.get("result")
            if result is None:
                await self._resolve_from_store(eid, publish=not run.finished_seen)
            else:
                self._finish(eid, result, publish=not run.finished_seen)
            worker.runs.pop(eid, None)
            self._dispatch()

    async def _retire(self, worker: WorkerHandle) -> None:
        """A worker's end closed: reap it, crash what it ran, start a replacement."""
        from ..store.executions import read_execution
        from ..store.maintenance import mark_crashed

        try:
            await asyncio.wait_for(worker.proc.wait(), self.grace)
        except asyncio.TimeoutError:
            worker.kill("it closed its connection but kept running")
            await worker.proc.wait()
        worker.writer.close()
        if not worker.ready.done():
            worker.ready.set_exception(Conv3nError(f"{worker.why()} before it was ready"))
            worker.ready.exception()  # retrieved: start() may not be waiting for it
        self._workers.pop(worker.index, None)
        reason = worker.why()
        runs, worker.runs = worker.runs, {}
        if runs:
            try:
                await asyncio.to_thread(mark_crashed, self.store, reason=reason, execution_ids=runs)
            except Conv3nError as exc:  # the waiter still hears of the crash
                reason = f"{reason} (marking it crashed failed: {exc})"
        requeue: list[str] = []
        for eid, run in runs.items():
            try:
                row = await asyncio.to_thread(read_execution, self.store, eid)
            except Conv3nError:
                row = {"id": eid, "status": "crashed", "error": {"message": reason}}
            if row["status"] == "queued" and not self._closing:
                requeue.append(eid)  # never started: safe to hand to another worker
                continue
            self._finish(eid, crashed_result(row), publish=not run.finished_seen)
        self._queue.extendleft(reversed(requeue))
        self._dispatch()
        if not self._closing:
            log.warning(
                "%s; %d running executions crashed, %d handed on; starting a replacement",
                reason,
                len(runs) - len(requeue),
                len(requeue),
            )
            self._restarts += 1
            task = asyncio.ensure_future(self._respawn(worker))
            self._spawning.add(task)
            task.add_done_callback(self._spawning.discard)

    async def _respawn(self, old: WorkerHandle) -> None:
        # A worker that dies at once (a broken installation) must not spin: wait a little,
        # longer after each failure to start one.
        pause = 1.0 if time.time() - old.started_at < 1.0 else 0.0
        while not self._closing:
            try:
                await asyncio.wait_for(self._closed.wait(), pause)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self._spawn(old.index)
                return
            except OSError as exc:
                pause = min(max(pause * 2, 1.0), 30.0)
                log.error("cannot start worker %d (retrying in %gs): %s", old.index, pause, exc)

    async def _watch(self) -> None:
        """Every quarter second: kill workers over the memory limit or past a deadline."""
        while True:
            await asyncio.sleep(_MONITOR_EVERY)
            now = time.monotonic()
            for worker in list(self._workers.values()):
                try:
                    reason = worker.verdict(now, self.memory_limit_mb)
                except Exception:  # supervision must go on for the other workers
                    log.exception("checking %s failed", worker.label())
                    continue
                if reason is not None:
                    log.warning("killing %s: %s", worker.label(), reason)
                    worker.kill(reason)

    # -- results --------------------------------------------------------------------------
    async def _resolve_from_store(self, execution_id: str, *, publish: bool) -> None:
        from ..store.executions import read_execution

        try:
            row = await asyncio.to_thread(read_execution, self.store, execution_id)
        except Conv3nError as exc:
            row = {"id": execution_id, "status": "error", "error": {"message": str(exc)}}
        self._finish(execution_id, crashed_result(row), publish=publish)

    def _finish(self, execution_id: str, result: dict[str, Any], *, publish: bool) -> None:
        if publish:
            self._publish(
                execution_id,
                {
                    "type": "execution_finished",
                    "execution_id": execution_id,
                    "node_id": None,
                    "ts": time.time(),
                    "data": {
                        "status": result.get("status"),
                        "duration_ms": result.get("duration_ms"),
                        "error": result.get("error"),
                    },
                },
            )
        self._resolve(execution_id, result)
