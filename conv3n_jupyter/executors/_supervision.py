"""One supervised worker process as the pool sees it: its process, connection and runs.

:func:`spawn` starts ``python -m conv3n_jupyter.executors.worker`` with its end of a socket
pair; :meth:`WorkerHandle.verdict` says whether it must be killed (memory, a deadline, no
readiness) and :meth:`WorkerHandle.why` words how it ended, for the crashed executions.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _protocol as proto

READY_TIMEOUT = 60.0
"""Seconds a new worker may take to report ``ready``."""

MiB = 1024 * 1024


@dataclass
class Run:
    """An execution handed to a worker: when it must be over (``time.monotonic()``)."""

    deadline: float | None
    timeout: float | None
    finished_seen: bool = False  # the worker sent its execution_finished event


@dataclass
class WorkerHandle:
    """The supervisor's side of one worker process."""

    index: int
    proc: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ready: asyncio.Future[None]
    started_at: float = field(default_factory=time.time)
    spawned: float = field(default_factory=time.monotonic)
    runs: dict[str, Run] = field(default_factory=dict)
    rss: int = 0
    last_beat: float = field(default_factory=time.monotonic)
    kill_reason: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"worker-{self.index}"

    @property
    def alive(self) -> bool:
        """Running and not being killed."""
        return self.proc.returncode is None and self.kill_reason is None

    @property
    def is_ready(self) -> bool:
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None

    def label(self) -> str:
        return f"worker {self.index} (pid {self.proc.pid})"

    def send(self, message: dict[str, Any]) -> None:
        """Write one protocol message (dropped once the connection is closing)."""
        if not self.writer.is_closing():
            self.writer.write(proto.encode(message))

    def kill(self, reason: str) -> None:
        """SIGKILL the process; the first reason given is the one reported."""
        if self.kill_reason is None:
            self.kill_reason = reason
        if self.proc.returncode is None:
            self.proc.kill()

    def verdict(self, now: float, memory_limit_mb: int) -> str | None:
        """Why this worker must be killed now, or ``None``; refreshes :attr:`rss`."""
        if not self.alive:
            return None
        rss = proto.rss_of(self.proc.pid)
        if rss is not None:
            self.rss = rss
        if memory_limit_mb and self.rss > memory_limit_mb * MiB:
            return f"it used {self.rss / MiB:.0f} MiB, over the {memory_limit_mb} MiB limit"
        for eid, run in self.runs.items():
            if run.deadline is not None and now > run.deadline and run.timeout is not None:
                return f"execution {eid} ran past the execution timeout of {run.timeout:g}s"
        if not self.ready.done() and now - self.spawned > READY_TIMEOUT:
            return f"it was not ready after {READY_TIMEOUT:g}s"
        return None

    def why(self) -> str:
        """How the worker ended, for the executions it ran."""
        if self.kill_reason is not None:
            return f"{self.label()} was killed: {self.kill_reason}"
        code = self.proc.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"{self.label()} exited with signal {name}"
        return f"{self.label()} exited with code {code}"


async def spawn(
    index: int,
    *,
    env: Mapping[str, str],
    timeout: float | None,
    max_message: int,
) -> WorkerHandle:
    """Start worker ``index`` (stderr and stdout are the supervisor's, for its logs)."""
    parent, child = socket.socketpair()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conv3n_jupyter.executors.worker",
            "--fd",
            str(child.fileno()),
            "--name",
            f"worker-{index}",
            "--timeout",
            str(timeout or 0),
            "--max-message",
            str(max_message),
            "--supervisor",
            str(os.getpid()),
            pass_fds=(child.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
            env=dict(env),
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    reader, writer = await asyncio.open_connection(
        sock=parent, limit=proto.reader_limit(max_message)
    )
    ready = asyncio.get_running_loop().create_future()
    return WorkerHandle(index, proc, reader, writer, ready)
