"""Executors: where queued executions run, behind one small interface.

The API process records an execution in the store (status ``queued``) and hands its id to an
:class:`~conv3n_jupyter.executors.base.Executor`; the store stays the ledger. Two executors:

- :class:`~conv3n_jupyter.executors.pool.WorkerPool` (``conv3n serve --workers N``): supervised
  worker processes, each running the engine on its own event loop; a worker that dies, hangs
  or grows too large is killed and replaced and its executions are marked ``crashed``.
- :class:`~conv3n_jupyter.executors.local.InProcessExecutor` (``--workers 0``): the engine in
  the calling process, for development and tests.

Scale-out across machines plugs in at the same seam (a Dask executor).
"""

from __future__ import annotations

from .base import Executor, ExecutorStats

__all__ = ["Executor", "ExecutorStats"]
