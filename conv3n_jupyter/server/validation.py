"""Checking workflows in the API process, on threads with a large stack of their own.

Validation parses every expression with the native CEL parser, which recurses once per
operator: a 4,000-character chain of additions needs about 1 MiB of stack, and running out
of stack in native code kills the whole process (SIGSEGV), not just the request. The default
thread stack is whatever the platform gives (``ulimit -s``, 128 KiB on musl), so the checks
run on threads created with :data:`STACK_BYTES` (address space only; pages are committed
when touched). Nothing is evaluated: expressions are compiled, code blocks' Python is
compiled by ``compile()`` but never executed.

    >>> threads = ValidationThreads()
    >>> wf = await threads.parse({"name": "w", "nodes": {"a": {"type": "std/noop"}}})
    >>> threads.close()
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import TYPE_CHECKING, Any

from .._parse_cache import ParseCache
from ..errors import Problem, WorkflowValidationError

if TYPE_CHECKING:
    from ..model import Workflow

_CACHE = ParseCache()
STACK_BYTES = 64 * 1024 * 1024
THREADS = 2
_Job = tuple[Any, str, asyncio.AbstractEventLoop, "asyncio.Future[Workflow]"]


def parse_safely(definition: Any, source: str) -> Workflow:
    """The parsed workflow; any failure to check it is a :class:`WorkflowValidationError`.

    Definitions seen before come from a cache (the same workflow posted again costs a
    digest of its JSON, not a full check).
    """
    try:
        return _CACHE.parse(definition, source)
    except (RecursionError, MemoryError) as exc:
        reason = f"the workflow is too deeply nested or too large to check ({type(exc).__name__})"
        raise WorkflowValidationError([Problem("", reason)], source) from None
    except WorkflowValidationError:
        raise
    except BaseException as exc:
        # A panic in the native parser surfaces as pyo3's PanicException, a BaseException.
        if type(exc).__name__ == "PanicException":
            reason = "an expression could not be parsed (the expression parser failed)"
            raise WorkflowValidationError([Problem("", reason)], source) from None
        raise


def _settle(future: asyncio.Future[Workflow], value: Any, error: BaseException | None) -> None:
    if future.done():  # the request went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class ValidationThreads:
    """A few daemon threads with a :data:`STACK_BYTES` stack that parse workflows."""

    def __init__(self, threads: int = THREADS, stack_bytes: int = STACK_BYTES) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # stack_size() is process-wide for threads started after it: set, start ours, restore.
        with _STACK_LOCK:
            previous = threading.stack_size(stack_bytes)
            try:
                for i in range(threads):
                    thread = threading.Thread(
                        target=self._work, name=f"conv3n-validate-{i}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            finally:
                threading.stack_size(previous)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            definition, source, loop, future = job
            try:
                value, error = parse_safely(definition, source), None
            except BaseException as exc:  # handed to the waiting request
                value, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, value, error)
            except RuntimeError:  # the loop closed meanwhile
                pass

    async def parse(self, definition: Any, source: str = "request body") -> Workflow:
        """Parse and check ``definition``; raises :class:`WorkflowValidationError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Workflow] = loop.create_future()
        self._jobs.put((definition, source, loop, future))
        return await future

    def close(self) -> None:
        """Stop the threads once the jobs queued before are done."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()


_STACK_LOCK = threading.Lock()
