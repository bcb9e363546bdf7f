"""Properties of the scheduler on random DAGs: once, in order, within the concurrency limit."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conv3n_jupyter.engine import run
from conv3n_jupyter.model import load

from .testblocks import RECORDER


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """A random DAG: node i may depend on any j < i (so it is acyclic), mixed eager/awaiting blocks."""
    n = draw(st.integers(1, 25))
    nodes: dict[str, Any] = {}
    for i in range(n):
        deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        if draw(st.booleans()):
            node: dict[str, Any] = {
                "type": "test/probe",
                "config": {"sleep": draw(st.sampled_from([0, 1, 2]))},
            }
        else:
            node = {"type": "std/noop"}
        if deps:
            node["depends_on"] = [f"n{j}" for j in deps]
        nodes[f"n{i}"] = node
    limit = draw(st.integers(1, 6))
    return nodes, limit


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dags())
def test_random_dags_run_each_node_once_after_its_upstream_within_the_limit(
    case: tuple[dict[str, Any], int],
) -> None:
    nodes, limit = case
    RECORDER.reset()
    wf = load({"name": "random", "nodes": nodes, "config": {"max_concurrent_nodes": limit}})
    order: list[str] = []
    finished: set[str] = set()
    running = 0
    peak = 0

    def listener(event: Any) -> None:
        nonlocal running, peak
        if event.type == "node_started":
            node = nodes[event.node_id]
            assert event.node_id not in order, f"{event.node_id} started twice"
            assert set(node.get("depends_on", [])) <= finished, (
                f"{event.node_id} started before its upstream"
            )
            order.append(event.node_id)
            running += 1
            peak = max(peak, running)
        elif event.type == "node_finished":
            running -= 1
            finished.add(event.node_id)

    result = asyncio.run(run(wf, listeners=[listener]))
    assert result["status"] == "success"
    assert sorted(order) == sorted(nodes)
    assert peak <= limit
    assert RECORDER.peak <= limit
    assert all(count == 1 for count in RECORDER.calls.values())
