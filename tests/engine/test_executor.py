"""The scheduler: ordering, ports, skips, retries, timeouts, recovery, cancellation, pins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conv3n_jupyter.engine import EventQueue, Execution, run
from conv3n_jupyter.errors import WorkflowValidationError
from conv3n_jupyter.model import load

from .testblocks import RECORDER


def wf(nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None, **top: Any) -> Any:
    return load({"name": "t", "nodes": nodes, "edges": edges or [], **top})


def probe(**config: Any) -> dict[str, Any]:
    return {"type": "test/probe", "config": config}


async def test_chain_passes_data_downstream_in_order() -> None:
    w = wf(
        {
            "a": probe(value={"n": 1}),
            "b": {"type": "std/noop", "depends_on": ["a"]},
            "c": {
                "type": "std/noop",
                "config": {"value": "{{ $input.n + 1 }}"},
                "depends_on": ["b"],
            },
        }
    )
    r = await run(w)
    assert r["status"] == "success"
    assert r["output"] == 2
    assert r["nodes"]["b"]["data"] == {"n": 1}
    assert [n for kind, n in RECORDER.events if kind == "start"] == ["a"]


async def test_independent_nodes_run_concurrently_up_to_the_limit() -> None:
    nodes = {f"n{i}": probe(sleep=30) for i in range(10)}
    r = await run(wf(nodes, config={"max_concurrent_nodes": 3}))
    assert r["status"] == "success"
    assert RECORDER.peak == 3


async def test_condition_ports_route_and_skips_propagate() -> None:
    w = wf(
        {
            "start": probe(value={"x": 5}),
            "check": {
                "type": "std/condition",
                "config": {"expression": "$input.x > 3"},
                "depends_on": ["start"],
            },
            "yes": probe(value="big"),
            "no": probe(value="small"),
            "after_no": {"type": "std/noop", "depends_on": ["no"]},
        },
        [
            {"source": "check", "target": "yes", "sourceHandle": "true"},
            {"source": "check", "target": "no", "sourceHandle": "false"},
        ],
    )
    r = await run(w)
    assert r["nodes"]["check"]["port"] == "true"
    assert r["nodes"]["yes"]["status"] == "success"
    assert r["nodes"]["no"]["status"] == "skipped"
    assert r["nodes"]["after_no"]["status"] == "skipped"
    assert r["nodes"]["no"]["reason"] == "no incoming edge fired (check → true)"
    assert r["nodes"]["after_no"]["reason"] == "upstream skipped"
    assert r["output"] == {"yes": "big"}
    assert r["status"] == "success"


async def test_join_runs_when_one_branch_fired() -> None:
    w = wf(
        {
            "a": probe(value=1, port="a"),
            "left": probe(value="L"),
            "right": probe(value="R"),
            "join": {"type": "std/noop", "depends_on": ["left", "right"]},
        },
        [
            {"source": "a", "target": "left", "sourceHandle": "a"},
            {"source": "a", "target": "right", "sourceHandle": "b"},
        ],
    )
    r = await run(w)
    assert r["nodes"]["right"]["status"] == "skipped"
    assert r["nodes"]["join"]["status"] == "success"
    assert r["nodes"]["join"]["data"] == {"left": "L"}


async def test_retry_with_backoff_then_success_emits_retrying() -> None:
    queue = EventQueue()
    w = wf(
        {
            "flaky": {
                **probe(fail=2, value="ok"),
                "retry": {"max_attempts": 3, "initial_delay": "10ms", "jitter": False},
            }
        }
    )
    r = await run(w, listeners=[queue])
    assert r["status"] == "success"
    assert r["nodes"]["flaky"]["attempts"] == 3
    kinds = [e.type async for e in queue]
    assert kinds.count("node_retrying") == 2
    assert kinds[0] == "execution_started" and kinds[-1] == "execution_finished"


async def test_non_retryable_error_is_not_retried() -> None:
    w = wf({"bad": {**probe(fail=5, fatal=True), "retry": {"max_attempts": 4, "initial_delay": 1}}})
    r = await run(w)
    assert r["status"] == "error"
    assert r["nodes"]["bad"]["attempts"] == 1
    assert r["error"]["node"] == "bad"
    assert "planned failure" in r["error"]["message"]


async def test_per_attempt_timeout_fails_the_attempt_and_retries() -> None:
    w = wf(
        {
            "slow": {
                **probe(sleep=500),
                "timeout": "50ms",
                "retry": {"max_attempts": 2, "initial_delay": 1},
            }
        }
    )
    r = await run(w)
    node = r["nodes"]["slow"]
    assert node["status"] == "error"
    assert node["attempts"] == 2
    assert node["error"]["type"] == "NodeTimeout"
    assert node["duration_ms"] < 400


async def test_on_error_continue_emits_error_port() -> None:
    w = wf(
        {
            "bad": {**probe(fail=1, fatal=True), "on_error": "continue"},
            "handler": {"type": "std/noop"},
            "normal": {"type": "std/noop"},
        },
        [
            {"source": "bad", "target": "handler", "sourceHandle": "error"},
            {"source": "bad", "target": "normal"},
        ],
    )
    r = await run(w)
    assert r["status"] == "success"
    assert r["nodes"]["bad"]["port"] == "error"
    assert r["nodes"]["handler"]["data"]["error"]["node"] == "bad"
    assert r["nodes"]["normal"]["status"] == "skipped"


async def test_fallback_result_replaces_the_failed_node() -> None:
    w = wf(
        {
            "main": {**probe(fail=9, fatal=True), "fallback": "backup"},
            "backup": {
                "type": "std/noop",
                "config": {"value": "{{ 'fallback: ' + $input.error.message }}"},
            },
            "next": {"type": "std/noop", "depends_on": ["main"]},
        }
    )
    r = await run(w)
    assert r["status"] == "success"
    assert r["nodes"]["main"]["fallback"] == "backup"
    assert r["output"] == "fallback: planned failure 1"


async def test_group_failure_skips_the_rest_and_runs_the_handler() -> None:
    w = wf(
        {
            "charge": probe(fail=1, fatal=True),
            "receipt": {"type": "std/noop", "depends_on": ["charge"]},
            "slow_member": probe(sleep=2000),
            "alert": {"type": "std/noop", "config": {"value": "{{ $input.error.node }}"}},
            "independent": probe(value="still runs"),
        },
        groups={"payment": {"nodes": ["charge", "receipt", "slow_member"], "on_error": "alert"}},
    )
    r = await asyncio.wait_for(run(w), 1.5)
    assert r["status"] == "success"
    assert r["nodes"]["receipt"]["status"] == "skipped"
    assert r["nodes"]["slow_member"]["status"] == "skipped"
    assert r["nodes"]["alert"]["data"] == "charge"
    assert r["nodes"]["independent"]["status"] == "success"


async def test_unhandled_failure_stops_the_execution() -> None:
    w = wf(
        {
            "bad": probe(fail=1, fatal=True),
            "slow": probe(sleep=5000),
            "after": {"type": "std/noop", "depends_on": ["bad"]},
        }
    )
    r = await asyncio.wait_for(run(w), 2)
    assert r["status"] == "error"
    assert r["nodes"]["slow"]["status"] == "cancelled"
    assert r["nodes"]["after"]["status"] == "skipped"
    assert r["nodes"]["after"]["reason"] == "upstream 'bad' failed"


async def test_whole_execution_timeout() -> None:
    r = await run(wf({"slow": probe(sleep=5000)}, config={"timeout": "100ms"}))
    assert r["status"] == "error"
    assert "timed out" in r["error"]["message"]
    assert r["duration_ms"] < 1000


async def test_cancel_stops_running_nodes() -> None:
    ex = Execution(
        wf({"slow": probe(sleep=5000), "next": {"type": "std/noop", "depends_on": ["slow"]}})
    )
    task = asyncio.ensure_future(ex.run())
    await asyncio.sleep(0.05)
    ex.cancel()
    r = await asyncio.wait_for(task, 1)
    assert r["status"] == "cancelled"
    assert r["nodes"]["slow"]["status"] == "cancelled"
    assert ("end", "slow") in RECORDER.events  # the block's finally ran: cancelled cleanly


async def test_cancelling_the_run_task_propagates() -> None:
    task = asyncio.ensure_future(run(wf({"slow": probe(sleep=5000)})))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ("end", "slow") in RECORDER.events


async def test_disabled_node_is_skipped_downstream_too() -> None:
    r = await run(
        wf({"a": {**probe(), "disabled": True}, "b": {"type": "std/noop", "depends_on": ["a"]}})
    )
    assert r["nodes"]["a"]["status"] == "skipped"
    assert r["nodes"]["b"]["status"] == "skipped"


async def test_expression_failure_names_node_key_and_expression() -> None:
    r = await run(
        wf(
            {
                "a": probe(value={}),
                "b": {
                    "type": "std/noop",
                    "config": {"value": "{{ $input.missing }}"},
                    "depends_on": ["a"],
                },
            }
        )
    )
    err = r["nodes"]["b"]["error"]
    assert r["status"] == "error"
    assert err["node"] == "b"
    assert err["key"] == "value"
    assert err["expression"] == "$input.missing"


async def test_data_is_never_evaluated_as_an_expression() -> None:
    payload = {"text": "{{ 7 * 7 }}", "nested": ["{{ $env.HOME }}"]}
    w = wf(
        {
            "a": {"type": "std/noop"},
            "b": {"type": "std/noop", "config": {"value": "{{ $input }}"}, "depends_on": ["a"]},
            "c": {
                "type": "std/noop",
                "config": {"value": "got {{ $input.text }}"},
                "depends_on": ["b"],
            },
        }
    )
    r = await run(w, trigger=payload)
    assert r["nodes"]["a"]["data"] == payload
    assert r["nodes"]["b"]["data"] == payload
    assert r["output"] == "got {{ 7 * 7 }}"


async def test_pins_replace_the_node_in_debug_runs_only() -> None:
    w = wf(
        {"a": probe(value="real"), "b": {"type": "std/noop", "depends_on": ["a"]}},
        config={"pin": {"a": {"data": "pinned"}}},
    )
    assert (await run(w))["output"] == "real"
    r = await run(w, use_pins=True)
    assert r["output"] == "pinned"
    assert r["nodes"]["a"]["pinned"] is True
    r = await run(w, pins={"a": {"data": "explicit"}})
    assert r["output"] == "explicit"


async def test_partial_run_reuses_upstream_results() -> None:
    w = wf(
        {
            "a": probe(value=1),
            "b": probe(),
            "c": {"type": "std/noop", "config": {"value": "{{ $input + 10 }}"}},
        },
        [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}],
    )
    first = await run(w)
    assert first["output"] == 11
    RECORDER.reset()
    again = await run(w, start_from="b", previous=first)
    assert again["output"] == 11
    assert again["nodes"]["a"]["reused"] is True
    assert RECORDER.calls == {"b": 1}
    with pytest.raises(WorkflowValidationError, match="no earlier result"):
        await run(w, start_from="c")


async def test_params_defaults_and_required() -> None:
    w = wf(
        {"a": {"type": "std/noop", "config": {"value": "Hi {{ $params.name }} x{{ $params.n }}"}}},
        params={"name": {"type": "string"}, "n": {"type": "integer", "default": 2}},
    )
    assert (await run(w, {"name": "Ada"}))["output"] == "Hi Ada x2"
    with pytest.raises(WorkflowValidationError, match="required parameter 'name'"):
        await run(w)
    with pytest.raises(WorkflowValidationError, match="must be integer"):
        await run(w, {"name": "x", "n": "two"})


async def test_long_chain_of_skips_does_not_recurse() -> None:
    nodes: dict[str, Any] = {"a": probe(value=1, port="a")}
    prev = "a"
    for i in range(3000):
        nodes[f"n{i}"] = {"type": "std/noop"}
    edges = [{"source": "a", "target": "n0", "sourceHandle": "b"}]
    edges += [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(2999)]
    del prev
    r = await run(wf(nodes, edges))
    assert r["nodes"]["n2999"]["status"] == "skipped"


async def test_events_stream_in_order_with_node_ids() -> None:
    queue = EventQueue()
    w = wf({"a": probe(value=1), "b": {"type": "std/noop", "depends_on": ["a"]}})
    task = asyncio.ensure_future(run(w, listeners=[queue]))
    seen = [(e.type, e.node_id) async for e in queue]
    await task
    assert seen == [
        ("execution_started", None),
        ("node_started", "a"),
        ("node_finished", "a"),
        ("node_started", "b"),
        ("node_finished", "b"),
        ("execution_finished", None),
    ]
