"""The event stream every face listens to: execution and node lifecycle, retries, logs.

Listeners are plain callables taking an :class:`Event`; they run synchronously inside the
engine's loop, so they must be quick (queue the event, update a counter). :class:`EventQueue`
turns the stream into an async iterator for consumers that want to ``async for``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

EXECUTION_STARTED = "execution_started"
EXECUTION_FINISHED = "execution_finished"
NODE_STARTED = "node_started"
NODE_FINISHED = "node_finished"
NODE_RETRYING = "node_retrying"
NODE_SKIPPED = "node_skipped"
LOG = "log"

EVENT_TYPES = (
    EXECUTION_STARTED,
    EXECUTION_FINISHED,
    NODE_STARTED,
    NODE_FINISHED,
    NODE_RETRYING,
    NODE_SKIPPED,
    LOG,
)


@dataclass(slots=True)
class Event:
    """One thing that happened in an execution. ``data`` depends on ``type``."""

    type: str
    execution_id: str
    ts: float
    node_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "execution_id": self.execution_id,
            "node_id": self.node_id,
            "ts": self.ts,
            "data": self.data,
        }


Listener = Callable[[Event], Any]


class EventQueue:
    """A listener that buffers events for ``async for event in queue`` until the execution ends."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def __call__(self, event: Event) -> None:
        self._queue.put_nowait(event)
        if event.type == EXECUTION_FINISHED and event.data.get("depth", 0) == 0:
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event
