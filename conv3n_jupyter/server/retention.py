"""History retention of ``conv3n serve``: prune at start, then every hour.

Active when the ``history_keep_days`` or ``history_keep_last`` setting is set (by default
nothing is pruned). Each pass runs :func:`conv3n_jupyter.store.maintenance.prune` in a worker
thread and logs how many executions it removed; a failing pass is logged and the next one
runs on time.

    >>> task = start_retention(store, settings, logger)  # doctest: +SKIP
    >>> await stop_retention(task)                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from .logs import log

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store.database import Store

PRUNE_INTERVAL = 3600.0  # seconds between passes


async def prune_once(store: Store, settings: Settings, logger: logging.Logger) -> int:
    """One pass with the settings' limits; returns how many executions were removed."""
    from ..store.maintenance import prune

    older_than, keep_last = settings.history_limits()
    removed = await asyncio.to_thread(prune, store, older_than=older_than, keep_last=keep_last)
    log(logger, "info", "history_pruned", f"{removed} old execution(s) removed from the history",
        count=removed, keep_days=settings.history_keep_days,
        keep_last=settings.history_keep_last)  # fmt: skip
    return removed


async def _loop(store: Store, settings: Settings, logger: logging.Logger, every: float) -> None:
    while True:
        one = asyncio.ensure_future(prune_once(store, settings, logger))
        try:
            await asyncio.shield(one)
        except asyncio.CancelledError:
            # Shut-down: let the pass in its thread end before the store is closed.
            with contextlib.suppress(Exception):
                await one
            raise
        except Exception as exc:  # the service keeps running; next pass retries
            log(logger, "error", "history_prune_failed", f"pruning the history failed: {exc}")
        await asyncio.sleep(every)


def start_retention(
    store: Store, settings: Settings, logger: logging.Logger, *, every: float = PRUNE_INTERVAL
) -> asyncio.Task[None] | None:
    """Start the pruning task (its first pass runs at once); ``None`` when no limit is set."""
    if settings.history_limits() == (None, None):
        return None
    return asyncio.create_task(_loop(store, settings, logger, every), name="conv3n-retention")


async def stop_retention(task: asyncio.Task[None] | None) -> None:
    """Cancel the task and wait for it (a pass under way finishes first)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
