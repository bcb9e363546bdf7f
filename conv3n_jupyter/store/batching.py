"""Group commit: store writes that arrive while one is in flight go together in the next.

Under load, an API process records many executions at once and a worker claims many; one
transaction each would queue them all on the database's single writer (SQLite) or pay a round
trip and a commit apiece (PostgreSQL). A :class:`Coalescer` runs the first call at once and
collects the calls that arrive meanwhile into one batch for the next transaction, so a lone
call waits for nothing and a crowd shares its commits.

    >>> create = Coalescer(lambda rows: insert_executions(store, rows))
    >>> eid = await create(execution_row(workflow_name="hello", status="queued"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 256


class Coalescer(Generic[T, R]):
    """Turns ``write(items) -> results`` (blocking, one transaction) into ``await call(item)``.

    ``write`` runs in a worker thread and must return one result per item, in order. If it
    raises, every caller of that batch gets the exception.
    """

    def __init__(
        self, write: Callable[[list[T]], Sequence[R]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self.write = write
        self.max_batch = max_batch
        self.batches = 0
        self.items = 0
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    results = await asyncio.to_thread(self.write, [item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.items += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None

    def __repr__(self) -> str:
        return f"<Coalescer {self.items} items in {self.batches} batches>"
