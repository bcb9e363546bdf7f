"""A worker process of the pool: runs the executions its supervisor hands it.

Started by :class:`~conv3n_jupyter.executors.pool.WorkerPool` as::

    python -m conv3n_jupyter.executors.worker --fd 5 --name worker-1 --timeout 3600

with ``CONV3N_DATABASE_URL`` naming the store (never on the command line: it may hold a
password). ``--fd`` is the worker's end of a socket pair speaking the line protocol of
:mod:`~conv3n_jupyter.executors._protocol`. One event loop, one store and one
:class:`~conv3n_jupyter.engine.runtime.Runtime` serve every execution; each runs as a task.
On ``{"op": "stop"}`` the worker cancels its running executions, waits until they are
recorded so, and exits. When its supervisor dies (the socket closes, or on Linux the kernel's
parent-death signal) it dies at once: its executions stay ``running`` in the store and the next
start of the service marks them ``crashed``, as for any crash.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from . import _protocol as proto

if TYPE_CHECKING:
    from ..engine.events import Event
    from ..engine.executor import Execution
    from ..engine.runtime import Runtime
    from ..store.database import Store

MAX_LOGS = 1000
"""``log`` events forwarded per execution; later ones stay in the store only."""

_STOPPED = "the service stopped"
_PR_SET_PDEATHSIG = 1


def shrink(message: dict[str, Any], size: int) -> dict[str, Any]:
    """A message of ``size`` bytes cut down for the protocol: an event keeps its status only,
    a result becomes ``None`` (the supervisor reads the recorded one from the store).

    >>> shrink({"op": "done", "id": "e1", "result": {...}}, 20_000_000)
    {'op': 'done', 'id': 'e1', 'result': None}
    """
    if message["op"] == "done":
        return {"op": "done", "id": message["id"], "result": None}
    if message["op"] == "event":
        event = dict(message["event"])
        data = event.get("data") or {}
        small = {k: data[k] for k in ("status", "duration_ms", "attempt") if k in data}
        event["data"] = {**small, "truncated": True, "bytes": size}
        return {"op": "event", "id": message["id"], "event": event}
    raise ValueError(f"a {message['op']!r} message of {size} bytes is too long")


class Worker:
    """The worker's state: its connection, its store and the executions it runs."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        *,
        store: Store,
        runtime: Runtime,
        name: str,
        default_timeout: float | None,
        max_message: int = proto.MAX_MESSAGE,
    ) -> None:
        self.writer = writer
        self.store = store
        self.runtime = runtime
        self.name = name
        self.default_timeout = default_timeout
        self.max_message = max_message
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.running: dict[str, Execution] = {}
        self.cancels: dict[str, str] = {}  # cancel asked before the execution started
        self.logs: dict[str, int] = {}
        self.stopping = False
        from ..store.batching import Coalescer
        from ..store.executions import claim_executions

        worker_id = f"{name}/{os.getpid()}"
        # Executions handed over together are claimed in one transaction.
        self.claim: Coalescer[str, dict[str, Any] | None] = Coalescer(
            lambda ids: claim_executions(store, ids, worker=worker_id)
        )
        from ..store.recorder import final_writes

        self.finisher = final_writes(store)  # and the final writes of those that end together

    # -- sending ------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """Write one message; one too long for the supervisor is cut down first."""
        if self.writer.is_closing():
            return
        line = proto.encode(message)
        if len(line) > self.max_message:
            line = proto.encode(shrink(message, len(line)))
        self.writer.write(line)

    def _on_event(self, execution_id: str, event: Event) -> None:
        if event.type == "log":
            seen = self.logs.get(execution_id, 0)
            if seen >= MAX_LOGS:
                return
            self.logs[execution_id] = seen + 1
        self.send({"op": "event", "id": execution_id, "event": event.to_dict()})

    # -- running ------------------------------------------------------------------------
    def run(self, execution_id: str) -> None:
        """Start one execution as a task (a second ``run`` of the same id is ignored)."""
        if execution_id not in self.tasks:
            self.tasks[execution_id] = asyncio.ensure_future(self._run(execution_id))

    async def _run(self, execution_id: str) -> None:
        from ._runner import run_queued

        result: dict[str, Any] | None = None
        try:
            if not self.stopping and execution_id not in self.cancels:
                result = await run_queued(
                    self.store,
                    execution_id,
                    runtime=self.runtime,
                    worker=f"{self.name}/{os.getpid()}",
                    on_event=lambda event: self._on_event(execution_id, event),
                    started=lambda execution: self._started(execution_id, execution),
                    default_timeout=self.default_timeout,
                    claim=self.claim,
                    finisher=self.finisher,
                )
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a store failure, or a native panic (a BaseException)
            result = await self._failed(execution_id, exc)
        finally:
            self.tasks.pop(execution_id, None)
            self.running.pop(execution_id, None)
            self.cancels.pop(execution_id, None)
            self.logs.pop(execution_id, None)
        self.send({"op": "done", "id": execution_id, "result": result})

    async def _failed(self, execution_id: str, exc: BaseException) -> dict[str, Any] | None:
        """Record a run that broke off as ``crashed``; ``None`` once the store has it."""
        from ..store.maintenance import mark_crashed

        reason = f"{self.name} (pid {os.getpid()}) failed: {type(exc).__name__}: {exc}"
        try:
            await asyncio.to_thread(
                mark_crashed, self.store, reason=reason, execution_ids=[execution_id]
            )
            return None
        except Exception:  # the store is unreachable: the supervisor hears it from here
            return {
                "execution_id": execution_id,
                "status": "error",
                "error": {"type": type(exc).__name__, "message": str(exc), "node": None},
            }

    def _started(self, execution_id: str, execution: Execution) -> None:
        self.running[execution_id] = execution
        self.send({"op": "started", "id": execution_id, "timeout": execution.timeout})
        reason = _STOPPED if self.stopping else self.cancels.get(execution_id)
        if reason is not None:  # ``run()`` starts right after this: cancel once it has
            asyncio.get_running_loop().call_soon(execution.cancel, reason)

    def cancel(self, execution_id: str, reason: str) -> None:
        """Cancel a running execution, or one about to start."""
        execution = self.running.get(execution_id)
        if execution is not None:
            execution.cancel(reason)
        elif execution_id in self.tasks:
            self.cancels[execution_id] = reason

    async def stop(self) -> None:
        """Cancel every execution and wait until each has been recorded."""
        self.stopping = True
        for execution in list(self.running.values()):
            execution.cancel(_STOPPED)
        tasks = list(self.tasks.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def beat(self) -> None:
        """Send a heartbeat every :data:`~conv3n_jupyter.executors._protocol.BEAT` seconds."""
        pid = os.getpid()
        while True:
            self.send({"op": "beat", "rss": proto.rss_of(pid), "running": len(self.tasks)})
            await self.writer.drain()
            await asyncio.sleep(proto.BEAT)


async def serve(
    fd: int, *, name: str, default_timeout: float | None, max_message: int = proto.MAX_MESSAGE
) -> None:
    """Serve the supervisor on socket ``fd`` until told to stop or its end closes."""
    from ..engine.runtime import Runtime
    from ..store.database import open_store

    store = open_store(migrate=False)  # the supervisor migrated it before starting workers
    runtime = Runtime(store=store)
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd), limit=2**20)
    worker = Worker(
        writer,
        store=store,
        runtime=runtime,
        name=name,
        default_timeout=default_timeout,
        max_message=max_message,
    )
    worker.send({"op": "ready", "pid": os.getpid()})
    beat = asyncio.ensure_future(worker.beat())
    try:
        while True:
            line = await reader.readline()
            if not line:  # the supervisor is gone: end like a crash, record nothing more
                sys.stderr.flush()
                os._exit(0)
            message = proto.decode(line)
            op = message["op"]
            if op == "run":
                worker.run(str(message["id"]))
            elif op == "cancel":
                worker.cancel(str(message["id"]), str(message.get("reason") or "cancelled"))
            elif op == "stop":
                break
        await worker.stop()
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()
        await runtime.aclose()
        store.close()


def die_with(supervisor: int) -> None:
    """Be killed the moment the supervisor dies, even while this loop is stuck (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc to ask
            pass
    if supervisor and os.getppid() != supervisor:  # it died before the signal was armed
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """The worker's command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="conv3n-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    parser.add_argument("--timeout", type=float, default=0.0, help="0: no default timeout")
    parser.add_argument("--max-message", type=int, default=proto.MAX_MESSAGE)
    parser.add_argument("--supervisor", type=int, default=0, help="the supervisor's pid")
    args = parser.parse_args(argv)
    die_with(args.supervisor)
    # A crash in native code (the CEL parser on a deep expression) prints the Python stack
    # to the log before the process dies with its signal.
    faulthandler.enable()
    asyncio.run(
        serve(
            args.fd,
            name=args.name,
            default_timeout=args.timeout or None,
            max_message=args.max_message,
        )
    )


if __name__ == "__main__":
    main()
