"""Notebook runs: the Run handle, per-node data, pins, partial runs, staleness."""

from __future__ import annotations

import asyncio

import pytest

from conv3n_jupyter.errors import Conv3nError
from conv3n_jupyter.jupyter.run import Run
from conv3n_jupyter.jupyter.session import session_of
from conv3n_jupyter.model import Workflow, parse

from .conftest import chain


async def test_run_records_input_output_and_resolved_config(diamond_wf: Workflow) -> None:
    """Each node's input, output, raw and resolved config are kept for the inspector."""
    run = await diamond_wf.run(params={"x": 3})
    assert run.status == "success"
    join = run["join"]
    assert join.status == "success"
    assert join.input == {"left": {"x": 3, "l": 30}, "right": {"x": 3, "r": 4}}
    assert join.output["sum"] == 34
    assert join.config["operations"][0]["values"]["sum"] == "{{ $item.left.l + $item.right.r }}"
    # Per-item expressions are evaluated by the block, so the resolved config shows their source.
    assert join.resolved_config == join.config
    assert join.duration_ms is not None and join.attempts == 1
    assert run.output["sum"] == 34
    assert set(run) == {"start", "left", "right", "join"}
    assert run["left"].data["output"] == {"x": 3, "l": 30}


async def test_resolved_config_shows_expression_results() -> None:
    """Config expressions resolved before the block runs appear with their values."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "d",
            "params": {"ms": {"type": "integer", "default": 1}},
            "nodes": {"w": {"type": "std/delay", "config": {"duration": "{{ $params.ms }}ms"}}},
        }
    )
    run = await wf.run(params={"ms": 2})
    assert run["w"].config == {"duration": "{{ $params.ms }}ms"}
    assert run["w"].resolved_config == {"duration": "2ms"}


async def test_run_is_started_at_once_and_awaitable_twice(diamond_wf: Workflow) -> None:
    """wf.run() starts in the running loop; awaiting the handle again gives the same finished run."""
    run = diamond_wf.run()
    assert isinstance(run, Run) and run.task is not None
    first = await run
    second = await run
    assert first is second is run and run.done


async def test_unknown_node_lookup_names_known_nodes(diamond_wf: Workflow) -> None:
    """run["nope"] says which nodes exist."""
    run = await diamond_wf.run()
    with pytest.raises(KeyError, match="left"):
        run["nope"]


async def test_failed_node_keeps_error_and_downstream_skips() -> None:
    """A failing node shows its error; its downstream is skipped with the reason."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "fails",
            "nodes": {
                "a": {
                    "type": "std/transform",
                    "config": {"operations": [{"type": "set", "values": {"v": "{{ 1 / 0 }}"}}]},
                },
                "b": {"type": "std/noop", "depends_on": ["a"]},
            },
        }
    )
    run = await wf.run()
    assert run.status == "error"
    assert run["a"].status == "error" and "division" in run["a"].error["message"].lower()
    assert run["b"].status == "skipped" and "upstream 'a' failed" in run["b"].reason
    assert run.error is not None and run.error["node"] == "a"


async def test_pin_then_run_uses_pinned_output(diamond_wf: Workflow) -> None:
    """A pinned node is not run again; its pinned output flows downstream."""
    await diamond_wf.run(params={"x": 1})
    session_of(diamond_wf).pin("left", {"x": 1, "l": 1000})
    run = await diamond_wf.run(params={"x": 1})
    assert run["left"].pinned and run["left"].output == {"x": 1, "l": 1000}
    assert run["join"].output["sum"] == 1002


async def test_pin_from_a_run_and_unpin(diamond_wf: Workflow) -> None:
    """run.pin copies that run's output; unpin makes later runs execute the node again."""
    first = await diamond_wf.run(params={"x": 5})
    first.pin("right")
    session = session_of(diamond_wf)
    assert session.pins["right"] == {"port": "default", "data": {"x": 5, "r": 6}}
    second = await diamond_wf.run(params={"x": 7})
    assert second["right"].pinned and second["join"].output["sum"] == 70 + 6
    session.unpin("right")
    third = await diamond_wf.run(params={"x": 7})
    assert not third["right"].pinned and third["join"].output["sum"] == 78


async def test_cannot_pin_a_failed_node() -> None:
    """Pinning a node that did not succeed is refused with the reason."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "f",
            "nodes": {
                "a": {
                    "type": "std/transform",
                    "config": {"operations": [{"type": "set", "values": {"v": "{{ 1 / 0 }}"}}]},
                }
            },
        }
    )
    run = await wf.run()
    with pytest.raises(Conv3nError, match="did not succeed"):
        run.pin("a")


async def test_partial_run_reuses_upstream_and_reruns_downstream(diamond_wf: Workflow) -> None:
    """start_from re-runs the node and its downstream, reusing the last run's upstream results."""
    await diamond_wf.run(params={"x": 2})
    again = await diamond_wf.run(params={"x": 100}, start_from="left")
    assert again["start"].reused and again["start"].output == {"x": 2}
    assert again["right"].reused
    assert not again["left"].reused and again["left"].output == {"x": 2, "l": 20}
    assert again["join"].output["sum"] == 23


async def test_partial_run_without_history_is_refused(diamond_wf: Workflow) -> None:
    """Re-running from a node before any run says what to do."""
    with pytest.raises(Conv3nError, match="run the workflow once first"):
        diamond_wf.run(start_from="left")


async def test_edit_marks_node_and_downstream_stale_until_rerun(diamond_wf: Workflow) -> None:
    """Editing a node's config makes it and its downstream stale; a partial run clears them."""
    await diamond_wf.run()
    session = session_of(diamond_wf)
    diamond_wf.configure(
        "left", {"operations": [{"type": "set", "values": {"l": "{{ $item.x * 2 }}"}}]}
    )
    assert session.stale == {"left", "join"}
    run = await diamond_wf.run(start_from="left")
    assert session.stale == set()
    assert run["join"].output["sum"] == 4 + 3


async def test_cancel_stops_a_running_run() -> None:
    """Cancelling a run ends it as cancelled without waiting for a long delay."""
    wf = parse(chain(3, delay="30s"))
    run = wf.run()
    await asyncio.sleep(0.05)
    run.cancel()
    await run
    assert run.status == "cancelled"
    assert run["wait"].status == "cancelled"


async def test_repr_and_html_summary(diamond_wf: Workflow) -> None:
    """A run shows identity and state, and an escaped HTML table with one row per node."""
    run = await diamond_wf.run()
    assert repr(run) == "<Run 'diamond' success 4/4 nodes>"
    html = run._repr_html_()
    assert html.count("<tr>") == 5 and "join" in html
    assert [row["node"] for row in run.table()] == ["start", "left", "right", "join"]


def test_run_outside_a_loop_starts_on_await(diamond_wf: Workflow) -> None:
    """Without a running loop, wf.run() returns an unstarted handle that runs when awaited."""
    run = diamond_wf.run()
    assert run.task is None

    async def go() -> Run:
        return await run

    assert asyncio.run(go()).status == "success"


async def test_recording_keeps_the_fast_synchronous_start(diamond_wf: Workflow) -> None:
    """The recorder never pauses, so pure data blocks still start without a Task."""
    run = diamond_wf.run()
    assert run.execution._eager["left"] is True
    await run
