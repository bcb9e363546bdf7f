"""A pool of reusable Python worker processes that run ``custom/code`` nodes.

User code never runs in the engine's process. Workers start on first use, one per concurrent
call up to ``max_workers``; an idle worker is reused, and a worker serves one call at a time.
Each worker has its own address-space limit (``RLIMIT_AS``), so calls are matched to a worker
started with the memory limit (and working folder) they ask for.

    async with PythonPool(max_workers=4) as pool:
        result = await pool.call("def main(input, ctx):\\n    return input * 2", 21)
        assert result.data == 42

A worker that runs past its time limit gets SIGTERM (it then reports where the code was and
exits), and SIGKILL after a short grace; a worker whose call is cancelled is killed at once.
Either way the pool replaces it on a later call. Module state, imports and ``sys.path`` changes
made by user code live on in a reused worker; every call gets fresh globals and its own ``ctx``.

The workers' environment holds only :data:`PASSED_ENV` taken from this process (when set),
plus the ``env`` given to the pool: never the parent's secrets (``CONV3N_*``, ``*_TOKEN``, ...).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import BlockError, CodeError

PASSED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SYSTEMROOT",
)
"""Environment variables a worker inherits from the engine's process, when they are set."""

BLOCK_TYPE = "custom/code"
_HEADER = 4
_RETRYABLE = {
    "SyntaxError": False,
    "ImportError": False,
    "RuntimeError": True,
    "TimeoutError": True,
}
_WORKER_MODULE = "conv3n_jupyter.blocks.custom._python_worker"
_WORKER_FILE = Path(__file__).with_name("_python_worker.py")
# Runs the worker file as __main__ without importing the package (nor putting this folder, which
# holds a ``code.py``, on sys.path); a short command line keeps ``ps`` readable.
_BOOTSTRAP = (
    "import sys\n__file__ = sys.argv.pop(1)\n"
    "with open(__file__, 'rb') as _f:\n    _source = _f.read()\n"
    "exec(compile(_source, __file__, 'exec'))"
)


@dataclass
class CallResult:
    """The outcome of one call: ``data`` and ``logs``, or ``error`` (logs are kept either way)."""

    data: Any = None
    logs: list[tuple[str, str]] = field(default_factory=list)
    error: CodeError | None = None


def _worker_command(python: str, memory_limit_mb: int) -> list[str]:
    args = [str(memory_limit_mb * 1024 * 1024), str(os.getpid())]
    if _WORKER_FILE.is_file():
        return [python, "-c", _BOOTSTRAP, str(_WORKER_FILE), *args]
    return [python, "-m", _WORKER_MODULE, *args]  # installed without sources (zip, frozen)


def _format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def _exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "exit code unknown"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class _Worker:
    """One worker process and the tail of what it wrote to stderr."""

    def __init__(self, proc: asyncio.subprocess.Process, key: tuple[int, str]) -> None:
        self.proc = proc
        self.key = key
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.calls = 0
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr())
        self._closing: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        while True:
            line = await stream.readline()
            if not line:
                return
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def read(self) -> Any:
        stream = self.proc.stdout
        assert stream is not None
        header = await stream.readexactly(_HEADER)
        body = await stream.readexactly(int.from_bytes(header, "big"))
        return json.loads(body)

    async def request(
        self, payload: bytes, timeout: float | None, grace: float
    ) -> tuple[Any, bool]:
        """Send one call and read its reply: ``(reply or None if the worker died, timed_out)``."""
        loop = asyncio.get_running_loop()
        timed_out = False
        handles: list[asyncio.TimerHandle] = []

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            self.signal(signal.SIGTERM)
            handles.append(loop.call_later(grace, self.kill))

        if timeout is not None:
            handles.append(loop.call_later(timeout, on_timeout))
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(len(payload).to_bytes(_HEADER, "big") + payload)
            await stdin.drain()
            reply = await self.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            reply = None
        finally:
            for handle in handles:
                handle.cancel()
        self.calls += 1
        return reply, timed_out

    def signal(self, signum: int) -> None:
        # Not Process.send_signal: Popen polls (waitpid) first, which can reap a child that just
        # exited before asyncio's child watcher does, and the exit status is then lost (255).
        if self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def close(self, grace: float, *, kill: bool = False) -> asyncio.Task[None]:
        """Stop the process (at once, or close stdin and SIGKILL after ``grace``), then reap it."""
        if kill:
            self.kill()
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shutdown(grace))
        return self._closing

    async def _shutdown(self, grace: float) -> None:
        stdin = self.proc.stdin
        if stdin is not None:
            stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            self.kill()
            await self.proc.wait()
        # A process the user's code started may still hold stderr open: do not wait on it long.
        done, _ = await asyncio.wait({self._stderr_task}, timeout=1.0)
        if not done:
            self._stderr_task.cancel()
            transport = getattr(self.proc, "_transport", None)
            if transport is not None:
                transport.close()
            await asyncio.gather(self._stderr_task, return_exceptions=True)
        if stdin is not None:
            try:
                await stdin.wait_closed()
            except (ConnectionError, BrokenPipeError):
                pass


class PythonPool:
    """Worker processes for ``custom/code``; close with ``await pool.aclose()``.

    ``max_workers`` defaults to the CPU count. ``env`` adds variables to the workers'
    environment (see :data:`PASSED_ENV`). ``kill_grace`` is how long a timed-out or closing
    worker gets before SIGKILL.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        kill_grace: float = 0.2,
        start_timeout: float = 30.0,
    ) -> None:
        self.max_workers = max(1, max_workers or os.cpu_count() or 1)
        self.python = python or sys.executable or "python3"
        self.kill_grace = kill_grace
        self.start_timeout = start_timeout
        self._env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        self._env.update(env or {})
        self._workers: set[_Worker] = set()
        self._idle: list[_Worker] = []
        self._reserved = 0  # workers running or starting, counted against max_workers
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- public --------------------------------------------------------------------------------

    async def call(
        self,
        code: str,
        input: Any = None,
        *,
        node_id: str = "code",
        params: Mapping[str, Any] | None = None,
        vars: Mapping[str, Any] | None = None,
        nodes: Mapping[str, Any] | None = None,
        execution_id: str = "",
        timeout: float | None = 30.0,
        memory_limit_mb: int = 512,
        cwd: str | os.PathLike[str] | None = None,
    ) -> CallResult:
        """Run ``main(input, ctx)`` of ``code`` in a worker.

        ``nodes`` maps upstream node ids to their data (``ctx.node(id)``). Failures of the
        user's code come back as ``CallResult.error``; a closed pool raises :class:`BlockError`.
        Cancelling the awaiting task kills the worker.
        """
        if self._closed:
            raise BlockError("the Python worker pool is closed", block_type=BLOCK_TYPE)
        payload = self._encode(code, input, node_id, params, vars, nodes, execution_id)
        key = (int(memory_limit_mb), str(cwd if cwd is not None else Path.cwd()))
        worker = await self._acquire(key)
        try:
            reply, timed_out = await worker.request(payload, timeout, self.kill_grace)
        except BaseException:  # cancelled: the code may loop forever, so the worker goes
            self._discard(worker, kill=True)
            raise
        if timed_out:
            self._discard(worker, kill=True)
            return self._timeout_result(reply, timeout, node_id)
        if reply is None:
            await asyncio.shield(self._discard(worker, kill=True))
            return self._died_result(worker, worker.proc.returncode, node_id)
        if reply.get("retire"):
            self._discard(worker, kill=True)
        else:
            self._release(worker)
        logs = [(str(level), str(message)) for level, message in reply.get("logs", ())]
        if reply.get("ok"):
            return CallResult(reply.get("data"), logs)
        return CallResult(None, logs, self._code_error(reply.get("error") or {}, node_id))

    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return sorted(w.pid for w in self._workers if w.proc.returncode is None)

    async def aclose(self) -> None:
        """Stop every worker and reap it; calls still running fail."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        idle = set(self._idle)
        self._idle.clear()
        for worker in list(self._workers):
            self._closing.add(worker.close(self.kill_grace, kill=worker not in idle))
        self._workers.clear()
        while self._closing:
            tasks = list(self._closing)
            self._closing.clear()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> PythonPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._workers)}/{self.max_workers} workers"
        return f"<PythonPool {state}, {len(self._idle)} idle>"

    # -- workers ---------------------------------------------------------------------------------

    async def _acquire(self, key: tuple[int, str]) -> _Worker:
        while True:
            if self._closed:
                raise BlockError("the Python worker pool is closed", block_type=BLOCK_TYPE)
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i].key == key:
                    return self._idle.pop(i)
            if self._reserved < self.max_workers:
                break
            if self._idle:  # all slots taken, one idle with another limit: make room
                self._discard(self._idle.pop(0))
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the turn on
                else:
                    waiter.cancel()
                raise
        self._reserved += 1
        try:
            return await self._spawn(key)
        except BaseException:
            self._reserved -= 1
            self._wake()
            raise

    async def _spawn(self, key: tuple[int, str]) -> _Worker:
        memory_limit_mb, cwd = key
        try:
            proc = await asyncio.create_subprocess_exec(
                *_worker_command(self.python, memory_limit_mb),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                cwd=cwd,
            )
        except OSError as exc:
            raise BlockError(
                f"could not start a Python worker ({self.python}): {exc}",
                block_type=BLOCK_TYPE,
                retryable=False,
            ) from exc
        worker = _Worker(proc, key)
        self._workers.add(worker)
        try:
            ready = await asyncio.wait_for(worker.read(), self.start_timeout)
        except BaseException as exc:
            await self._drop(worker)
            if not isinstance(exc, Exception):
                raise
            tail = "\n".join(worker.stderr_tail)
            reason = (
                "it did not answer in time"
                if isinstance(exc, asyncio.TimeoutError)
                else (_exit_reason(proc.returncode))
            )
            raise BlockError(
                f"the Python worker did not start ({reason})" + (f":\n{tail}" if tail else ""),
                block_type=BLOCK_TYPE,
                retryable=False,
            ) from exc
        if not (isinstance(ready, dict) and ready.get("ready")):
            await self._drop(worker)
            raise BlockError(
                f"the Python worker sent {ready!r} instead of its greeting", block_type=BLOCK_TYPE
            )
        if self._closed:
            await self._drop(worker)
            raise BlockError("the Python worker pool is closed", block_type=BLOCK_TYPE)
        return worker

    async def _drop(self, worker: _Worker) -> None:
        """Kill a worker that never served (its slot is given back by the caller)."""
        self._forget(worker)
        task = worker.close(self.kill_grace, kill=True)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.shield(task)

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            self._discard(worker)
            return
        self._idle.append(worker)
        self._wake()

    def _forget(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)

    def _discard(self, worker: _Worker, *, kill: bool = False) -> asyncio.Task[None]:
        """Take a worker out of the pool and stop it in the background (aclose waits for it)."""
        if worker in self._workers:
            self._reserved -= 1
        self._forget(worker)
        task = worker.close(self.kill_grace, kill=kill)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._wake()
        return task

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- messages --------------------------------------------------------------------------------

    @staticmethod
    def _encode(
        code: str,
        input: Any,
        node_id: str,
        params: Mapping[str, Any] | None,
        vars: Mapping[str, Any] | None,
        nodes: Mapping[str, Any] | None,
        execution_id: str,
    ) -> bytes:
        request = {
            "code": code,
            "filename": f"<code:{node_id}>",
            "input": input,
            "ctx": {
                "params": dict(params or {}),
                "vars": dict(vars or {}),
                "nodes": dict(nodes or {}),
                "node_id": node_id,
                "execution_id": execution_id,
            },
        }
        try:
            return json.dumps(request).encode()
        except (TypeError, ValueError) as exc:
            raise BlockError(
                f"the input, params, vars or upstream data of the code is not JSON: {exc}",
                block_type=BLOCK_TYPE,
                node=node_id,
                retryable=False,
            ) from exc

    @staticmethod
    def _code_error(error: Mapping[str, Any], node_id: str) -> CodeError:
        error_type = str(error.get("type") or "RuntimeError")
        retryable = error.get("retryable")
        return CodeError(
            str(error.get("message") or error_type),
            error_type=error_type,
            user_stack=str(error.get("stack") or ""),
            line=error.get("line"),
            block_type=BLOCK_TYPE,
            node=node_id,
            retryable=_RETRYABLE.get(error_type, True) if retryable is None else bool(retryable),
        )

    @staticmethod
    def _timeout_result(reply: Any, timeout: float | None, node_id: str) -> CallResult:
        terminated = isinstance(reply, dict) and reply.get("terminated")
        line = reply.get("line") if terminated else None
        limit = _format_seconds(timeout or 0.0)
        message = f"TimeoutError: the code ran longer than its timeout of {limit}"
        if line is not None:
            message += f" (stopped at line {line})"
        logs = [(str(lv), str(msg)) for lv, msg in reply.get("logs", ())] if terminated else []
        error = CodeError(
            message,
            error_type="TimeoutError",
            user_stack=str(reply.get("stack") or "") if terminated else "",
            line=line,
            block_type=BLOCK_TYPE,
            node=node_id,
            retryable=True,
        )
        return CallResult(None, logs, error)

    def _died_result(self, worker: _Worker, returncode: int | None, node_id: str) -> CallResult:
        reason = _exit_reason(returncode)
        message = (
            "the Python worker pool was closed during the call"
            if self._closed
            else f"worker process died ({reason}) while running the code"
        )
        tail = "\n".join(worker.stderr_tail)
        error = CodeError(
            message,
            error_type="RuntimeError",
            block_type=BLOCK_TYPE,
            node=node_id,
            retryable=True,
            details={"error_type": "RuntimeError", "line": None, "stack": "", "stderr": tail},
        )
        return CallResult(None, [], error)
