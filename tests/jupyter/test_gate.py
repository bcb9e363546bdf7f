"""The pause gate on its own: who pauses, who queues, what resuming releases."""

from __future__ import annotations

import asyncio

import pytest

from conv3n_jupyter.jupyter._gate import Pause, PauseGate


def _gate(breakpoints: dict[str, str]) -> tuple[PauseGate, list[str]]:
    seen: list[str] = []

    def on_pause(p: Pause) -> None:
        seen.append(f"{p.phase}:{p.node_id}")

    return PauseGate(breakpoints, lambda n: {f"{n}.child"}, on_pause), seen


async def test_nodes_queue_behind_a_pause_and_go_in_order() -> None:
    """While paused every other node waits; continuing releases them in arrival order."""
    gate, seen = _gate({"a": "before"})
    order: list[str] = []

    async def node(nid: str) -> None:
        await gate.hook(nid, "before", None, None)
        order.append(nid)

    tasks = [asyncio.ensure_future(node(n)) for n in ("a", "b", "c")]
    await asyncio.sleep(0)
    assert seen == ["before:a"] and order == [] and len(gate.queue) == 2
    gate.resume("run")
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]


async def test_step_pauses_the_next_queued_node() -> None:
    """Step lets the paused node go and makes the first queued node the new pause."""
    gate, seen = _gate({"a": "before"})
    tasks = [asyncio.ensure_future(gate.hook(n, "before", None, None)) for n in ("a", "b")]
    await asyncio.sleep(0)
    gate.resume("step")
    await asyncio.sleep(0)
    assert seen == ["before:a", "before:b"] and tasks[0].done() and not tasks[1].done()
    gate.resume("run")
    await asyncio.gather(*tasks)


async def test_step_over_lets_the_branch_pass() -> None:
    """After step over, the paused node's branch passes even while another node is paused."""
    gate, _ = _gate({"a": "before", "x": "before"})
    first = asyncio.ensure_future(gate.hook("a", "before", None, None))
    await asyncio.sleep(0)
    gate.resume("step_over")
    await first
    other = asyncio.ensure_future(gate.hook("x", "before", None, None))  # pauses (breakpoint)
    await asyncio.sleep(0)
    await asyncio.wait_for(gate.hook("a.child", "before", None, None), 1)  # the branch: free
    gate.resume("run")
    await other


async def test_release_all_cancels_parked_nodes_and_misuse_is_refused() -> None:
    """Aborting cancels every parked node; resuming when not paused or in no mode is refused."""
    gate, _ = _gate({"a": "before"})
    parked = asyncio.ensure_future(gate.hook("a", "before", None, None))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="mode must be"):
        gate.resume("sideways")
    gate.release_all()
    with pytest.raises(asyncio.CancelledError):
        await parked
    with pytest.raises(RuntimeError, match="not paused"):
        gate.resume("run")
