"""The all-stop pause machinery behind the debugger: which node waits and which goes on.

The engine awaits the debugger's hooks before a node runs and after it ran. Here a hook either
returns at once or parks the node on a future: the first parked node is *the* pause (shown,
editable); any other node reaching a hook while paused queues behind it, so nothing moves while
the user looks. Resuming releases the pause, then the queue in order, until one of them must
pause in its turn. No widgets here: :class:`~conv3n_jupyter.jupyter.debugger.Debugger` shows it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MODES = ("run", "step", "step_over")


@dataclass
class Pause:
    """A node parked at a hook: ``phase`` is ``before`` (ctx editable) or ``after`` (result)."""

    node_id: str
    phase: str
    ctx: Any
    result: dict[str, Any] | None
    future: asyncio.Future[None] = field(repr=False)


class PauseGate:
    """Decides at each hook whether a node pauses, queues or passes; resumes by mode.

    ``breakpoints`` is read live (``{node_id: "before" | "after"}``); ``downstream(node_id)``
    gives a node's branch for *step over*; ``on_pause(pause)`` is called when a pause begins.
    """

    def __init__(
        self,
        breakpoints: Mapping[str, str],
        downstream: Callable[[str], set[str]],
        on_pause: Callable[[Pause], None],
    ) -> None:
        self.breakpoints = breakpoints
        self.downstream = downstream
        self.on_pause = on_pause
        self.mode = "run"
        self.skip: set[str] = set()
        self.current: Pause | None = None
        self.queue: deque[Pause] = deque()

    def reset(self) -> None:
        self.release_all()
        self.mode = "run"
        self.skip = set()

    def should_pause(self, nid: str, phase: str) -> bool:
        if self.breakpoints.get(nid) == phase:
            return True
        if phase == "before" and self.mode == "step":
            return True
        return phase == "before" and self.mode == "step_over" and nid not in self.skip

    def holds(self, nid: str, phase: str) -> bool:
        if self.should_pause(nid, phase):
            return True
        # All-stop: while paused, other nodes wait too, except the branch being stepped over.
        return self.current is not None and not (self.mode == "step_over" and nid in self.skip)

    async def hook(self, nid: str, phase: str, ctx: Any, result: dict[str, Any] | None) -> None:
        """What the engine's hooks await: returns when the node may go on."""
        if not self.holds(nid, phase):
            return
        pause = Pause(nid, phase, ctx, result, asyncio.get_running_loop().create_future())
        if self.current is None:
            self._begin(pause)
        else:
            self.queue.append(pause)
        await pause.future

    def _begin(self, pause: Pause) -> None:
        self.current = pause
        self.on_pause(pause)

    def resume(self, mode: str) -> None:
        """Release the current pause and go on in ``mode`` (``run``, ``step``, ``step_over``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        cur = self.current
        if cur is None:
            raise RuntimeError("not paused")
        self.mode = mode
        if mode == "step_over":
            self.skip = {cur.node_id} | self.downstream(cur.node_id)
        self.current = None
        cur.future.set_result(None)
        while self.queue:
            pause = self.queue.popleft()
            if pause.future.done():
                continue
            if self.should_pause(pause.node_id, pause.phase):
                self._begin(pause)
                return
            pause.future.set_result(None)

    def release_all(self) -> None:
        """Cancel every parked node (the run is being aborted or has ended)."""
        for pause in [self.current, *self.queue]:
            if pause is not None and not pause.future.done():
                pause.future.cancel()
        self.current = None
        self.queue.clear()
