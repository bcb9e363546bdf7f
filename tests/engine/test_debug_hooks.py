"""The hooks a debugger uses: pause before/after a node, change its input, see its result."""

from __future__ import annotations

import asyncio
from typing import Any

from conv3n_jupyter.engine import Execution
from conv3n_jupyter.model import load


class PausingDebugger:
    """Pauses before nodes that have a breakpoint until `release()`; may replace their input."""

    def __init__(self, new_input: Any = None) -> None:
        self.paused: list[str] = []
        self.after: list[tuple[str, str]] = []
        self.gate = asyncio.Event()
        self.new_input = new_input

    def release(self) -> None:
        self.gate.set()

    async def before_node(self, execution: Execution, node: Any, ctx: Any) -> None:
        if node.breakpoint in (True, "before"):
            self.paused.append(node.id)
            await self.gate.wait()
            if self.new_input is not None:
                ctx.input = self.new_input

    async def after_node(
        self, execution: Execution, node: Any, ctx: Any, result: dict[str, Any]
    ) -> None:
        self.after.append((node.id, result["status"]))


WF = {
    "name": "debug",
    "nodes": {
        "a": {"type": "std/noop", "config": {"value": 1}},
        "b": {"type": "std/noop", "depends_on": ["a"], "breakpoint": True},
        "c": {"type": "std/noop", "config": {"value": "{{ $input }}"}, "depends_on": ["b"]},
        "side": {"type": "std/noop", "config": {"value": "independent"}},
    },
}


async def test_a_breakpoint_pauses_only_its_branch_until_released() -> None:
    dbg = PausingDebugger()
    ex = Execution(load(WF), debugger=dbg)
    task = asyncio.ensure_future(ex.run())
    for _ in range(50):
        await asyncio.sleep(0.005)
    assert dbg.paused == ["b"]
    assert not task.done()
    assert ex.results["side"]["status"] == "success"  # other branches keep running
    assert "c" not in ex.results
    dbg.release()
    result = await asyncio.wait_for(task, 1)
    assert result["output"]["c"] == 1
    assert ("c", "success") in dbg.after


async def test_input_changed_at_a_pause_is_used() -> None:
    dbg = PausingDebugger(new_input={"edited": True})
    ex = Execution(load(WF), debugger=dbg)
    task = asyncio.ensure_future(ex.run())
    await asyncio.sleep(0.02)
    dbg.release()
    result = await asyncio.wait_for(task, 1)
    assert result["nodes"]["b"]["data"] == {"edited": True}
    assert result["output"]["c"] == {"edited": True}


async def test_cancel_while_paused_ends_the_run() -> None:
    dbg = PausingDebugger()
    ex = Execution(load(WF), debugger=dbg)
    task = asyncio.ensure_future(ex.run())
    await asyncio.sleep(0.02)
    ex.cancel()
    result = await asyncio.wait_for(task, 1)
    assert result["status"] == "cancelled"
    assert result["nodes"]["b"]["status"] == "cancelled"
