"""Tests of ``std/loop``: filter/map/batch with expressions, and bodies run per item or batch.

Bodies run through the fake context's ``run_workflow`` callback; engine-level tests run real
sub-workflows.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import jsonschema
import pytest

from conv3n_jupyter import expressions
from conv3n_jupyter.blocks.base import Output
from conv3n_jupyter.blocks.std.loop import Loop
from conv3n_jupyter.errors import (
    BlockError,
    ExpressionError,
    HTTPBlockError,
    Problem,
    WorkflowValidationError,
)
from tests.blocks.fakectx import FakeContext

BLOCK = Loop()
ORDERS = [
    {"id": 1, "price": 5, "qty": 0},
    {"id": 2, "price": 1, "qty": 3},
    {"id": 3, "price": 8, "qty": 1},
    {"id": 4, "price": 3, "qty": 2},
]


async def run(config: dict, input: Any = None, **kw: Any) -> tuple[Output, FakeContext]:
    ctx = FakeContext(BLOCK, config, input=input, **kw)
    out = await BLOCK.run(ctx)
    assert isinstance(out, Output)
    return out, ctx


def ok(output: Any) -> dict[str, Any]:
    return {"status": "success", "output": output, "nodes": {}}


# -- expressions only --------------------------------------------------------------------------


async def test_filter_then_map() -> None:
    """items → filter → map, each seeing $item and $index; order is kept."""
    config = {
        "items": "$input.orders",
        "filter": "$item.qty > 0",
        "map": "{'id': $item.id, 'total': $item.price * $item.qty, 'at': $index}",
    }
    out, _ = await run(config, {"orders": ORDERS})
    assert out.port == "default"
    # $index counts within the list the expression sees (after filtering for map).
    assert out.data == [
        {"id": 2, "total": 3, "at": 0},
        {"id": 3, "total": 8, "at": 1},
        {"id": 4, "total": 6, "at": 2},
    ]


async def test_filter_sees_the_original_index() -> None:
    """The filter's $index is the position in `items`."""
    out, _ = await run({"items": "$input", "filter": "$index % 2 == 0"}, ["a", "b", "c", "d"])
    assert out.data == ["a", "c"]


async def test_literal_list_and_no_expressions_pass_items_through() -> None:
    """A literal list with no filter or map comes out unchanged."""
    out, _ = await run({"items": [1, "two", {"three": 3}]})
    assert out.data == [1, "two", {"three": 3}]


async def test_braced_items_expression_is_accepted() -> None:
    """`items` written as a {{ }} template works too."""
    out, _ = await run({"items": "{{ $input.orders }}", "map": "$item.id"}, {"orders": ORDERS})
    assert out.data == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("items", "config"),
    [([], {}), (ORDERS, {"filter": "$item.price > 100"})],
)
async def test_nothing_left_goes_to_port_empty(items: list, config: dict) -> None:
    """No item left (before or after filtering) emits [] on port empty, and runs no body."""
    calls: list = []
    out, _ = await run(
        {"items": "$input", "body": {"nodes": {}}, **config},
        items,
        run_workflow=lambda *a: calls.append(a),
    )
    assert (out.port, out.data) == ("empty", [])
    assert calls == []


@pytest.mark.parametrize(
    ("value", "kind"), [({"a": 1}, "object"), ("text", "string"), (None, "null"), (3, "number")]
)
async def test_items_must_be_a_list(value: Any, kind: str) -> None:
    """A non-list `items` fails, naming the type it got, without retry."""
    with pytest.raises(BlockError, match=f"'items' must give a list, got {kind}") as info:
        await run({"items": "$input"}, value)
    assert info.value.retryable is False


async def test_non_boolean_filter_names_the_index() -> None:
    """A filter result that is not a boolean fails, naming the item's index."""
    with pytest.raises(BlockError, match=r"'filter' \(at \$index 1\).*boolean, got number"):
        await run({"items": "$input", "filter": "$item"}, [True, 1])


async def test_failing_map_names_the_index() -> None:
    """An expression failure inside map says which item failed."""
    with pytest.raises(ExpressionError, match=r"at \$index 2") as info:
        await run({"items": "$input", "map": "$item.price * 2"}, [{"price": 1}, {"price": 2}, {}])
    assert info.value.key == "map"


@pytest.mark.parametrize("size", [2, "2"])
async def test_batches_without_body(size: Any) -> None:
    """batch_size without body emits the list of batches (last one shorter)."""
    out, _ = await run(
        {"items": "$input", "map": "$item * 10", "batch_size": size}, [1, 2, 3, 4, 5]
    )
    assert out.data == [[10, 20], [30, 40], [50]]


@pytest.mark.parametrize("size", [0, -1, "x", 1.5, True])
async def test_bad_batch_size(size: Any) -> None:
    """batch_size must be a whole number of 1 or more."""
    with pytest.raises(BlockError, match="'batch_size'"):
        await run({"items": [1], "batch_size": size})


async def test_ten_thousand_items_cost_little_beyond_the_expression() -> None:
    """Mapping 10,000 items adds only a few ms over evaluating the expression 10,000 times."""
    items = [{"price": i} for i in range(10_000)]
    config = {"items": "$input", "map": "$item.price * 2"}
    ctx = FakeContext(BLOCK, config, input=items)
    expr = expressions.compile_expression("$item.price * 2")

    def baseline() -> float:
        started = time.perf_counter()
        for i, item in enumerate(items):
            ctx.evaluate(expr, item=item, index=i)
        return time.perf_counter() - started

    async def loop() -> tuple[float, Any]:
        started = time.perf_counter()
        out = await BLOCK.run(ctx)
        return time.perf_counter() - started, out

    base = min(baseline() for _ in range(3))
    results = [await loop() for _ in range(3)]
    best = min(t for t, _ in results)
    assert results[0][1].data[:3] == [0, 2, 4] and len(results[0][1].data) == 10_000
    assert best - base < 0.02 + base * 0.25, (best, base)


# -- bodies ------------------------------------------------------------------------------------


BODY = {"nodes": {"double": {"type": "std/noop"}}}


async def test_body_runs_per_item_with_params_and_keeps_order() -> None:
    """Each item runs the body with $params.item, .index and the loop's rendered params."""

    async def body(workflow: Any, params: dict, key: str) -> dict:
        await asyncio.sleep(random.uniform(0, 0.01))
        return ok({"got": params["item"]["id"] * 10, "tag": params["tag"], "at": params["index"]})

    config = {
        "items": "$input",
        "body": BODY,
        "params": {
            "tag": "order-{{ $item.id }}-{{ $index }}",
            "static": 7,
            "nested": {"price": "{{ $item.price }}", "run": "{{ $params.run }}"},
        },
    }
    out, ctx = await run(config, ORDERS, params={"run": "r1"}, run_workflow=body)
    assert out.port == "default"
    assert out.data == [
        {"got": 10, "tag": "order-1-0", "at": 0},
        {"got": 20, "tag": "order-2-1", "at": 1},
        {"got": 30, "tag": "order-3-2", "at": 2},
        {"got": 40, "tag": "order-4-3", "at": 3},
    ]
    calls = sorted(ctx.workflow_calls, key=lambda c: c["params"]["index"])
    assert [c["key"] for c in calls] == ["body.0", "body.1", "body.2", "body.3"]
    assert all(c["workflow"] is ctx.config["body"] for c in calls)
    assert calls[2]["params"] == {
        "tag": "order-3-2",
        "static": 7,
        "nested": {"price": 8, "run": "r1"},
        "item": ORDERS[2],
        "index": 2,
    }


async def test_body_sees_mapped_items() -> None:
    """filter and map apply before the body."""
    out, _ = await run(
        {"items": "$input", "filter": "$item.qty > 0", "map": "$item.id", "body": BODY},
        ORDERS,
        run_workflow=lambda wf, p, k: ok(p["item"]),
    )
    assert out.data == [2, 3, 4]


async def test_workflow_reference_body_is_passed_through() -> None:
    """A {"workflow": ...} body reaches run_workflow unchanged (the engine resolves it)."""
    body = {"workflow": "sub/process.conv3n.json"}
    out, ctx = await run(
        {"items": [1], "body": body}, run_workflow=lambda wf, p, k: ok(wf["workflow"])
    )
    assert out.data == ["sub/process.conv3n.json"]
    assert ctx.workflow_calls[0]["workflow"] == body


async def test_batches_run_the_body_per_batch() -> None:
    """With batch_size the body gets $params.batch, once per batch."""
    out, ctx = await run(
        {"items": "$input", "batch_size": 2, "body": BODY},
        [1, 2, 3],
        run_workflow=lambda wf, p, k: ok(sum(p["batch"])),
    )
    assert out.data == [3, 3]
    assert sorted(c["params"]["index"] for c in ctx.workflow_calls) == [0, 1]
    assert all("item" not in c["params"] for c in ctx.workflow_calls)


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_at_most_concurrency_bodies_at_once(concurrency: int) -> None:
    """No more than `concurrency` bodies are in flight, and the limit is reached."""
    running = peak = 0

    async def body(workflow: Any, params: dict, key: str) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return ok(params["index"])

    out, _ = await run(
        {"items": list(range(10)), "body": BODY, "concurrency": concurrency}, run_workflow=body
    )
    assert out.data == list(range(10))
    assert peak == concurrency


async def test_default_concurrency_is_four() -> None:
    """Without `concurrency`, four bodies run at a time."""
    running = peak = 0

    async def body(workflow: Any, params: dict, key: str) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return ok(None)

    await run({"items": list(range(12)), "body": BODY}, run_workflow=body)
    assert peak == 4


def failing_at(bad: int, started: list[int] | None = None):
    async def body(workflow: Any, params: dict, key: str) -> dict:
        if started is not None:
            started.append(params["index"])
        await asyncio.sleep(0.001)
        if params["index"] == bad:
            return {
                "status": "error",
                "output": None,
                "nodes": {
                    "fetch": {"status": "success", "data": 1},
                    "charge": {
                        "status": "error",
                        "error": {"type": "BlockError", "message": "card declined"},
                    },
                },
            }
        return ok(params["index"])

    return body


async def test_failed_body_fails_the_node_and_stops_the_rest() -> None:
    """A failed body fails the loop, naming the item, the body's node and its message."""
    started: list[int] = []
    with pytest.raises(BlockError, match="item 2 at node 'charge': card declined") as info:
        await run(
            {"items": list(range(50)), "body": BODY, "concurrency": 2},
            run_workflow=failing_at(2, started),
        )
    assert info.value.details["index"] == 2
    assert len(started) < 10


async def test_continue_on_error_keeps_going() -> None:
    """With continue_on_error the failed entry becomes {"error": ...} in place."""
    out, _ = await run(
        {"items": list(range(4)), "body": BODY, "continue_on_error": True},
        run_workflow=failing_at(1),
    )
    assert out.data[0] == 0 and out.data[2:] == [2, 3]
    assert out.data[1] == {"error": {"index": 1, "node": "charge", "message": "card declined"}}


async def test_execution_level_error_names_the_node() -> None:
    """The sub-execution's own `error` (node, message) is used when present."""

    def body(workflow: Any, params: dict, key: str) -> dict:
        error = {"type": "BlockError", "message": "boom", "node": "step2", "attempts": 1}
        return {"status": "error", "output": None, "nodes": {}, "error": error}

    with pytest.raises(BlockError, match="item 0 at node 'step2': boom"):
        await run({"items": [0], "body": BODY}, run_workflow=body)


async def test_cancelled_body_fails_the_item() -> None:
    """A body that ends cancelled is not a success."""
    out, _ = await run(
        {"items": [0], "body": BODY, "continue_on_error": True},
        run_workflow=lambda wf, p, k: {"status": "cancelled", "output": None, "nodes": {}},
    )
    assert out.data == [{"error": {"index": 0, "node": None, "message": "status 'cancelled'"}}]


async def test_error_raised_by_the_body_runner_counts_as_a_failed_item() -> None:
    """A block error escaping run_workflow is that item's failure."""

    def body(workflow: Any, params: dict, key: str) -> dict:
        if params["index"] == 0:
            raise HTTPBlockError("GET http://x failed: timed out", node="fetch")
        return ok(params["index"])

    out, _ = await run(
        {"items": [0, 1], "body": BODY, "continue_on_error": True}, run_workflow=body
    )
    assert out.data[0]["error"]["node"] == "fetch"
    assert "timed out" in out.data[0]["error"]["message"]
    with pytest.raises(BlockError, match="item 0 at node 'fetch'"):
        await run({"items": [0, 1], "body": BODY}, run_workflow=body)


async def test_invalid_body_fails_even_with_continue_on_error() -> None:
    """An invalid body workflow is not an item's failure: it fails the node."""

    def body(workflow: Any, params: dict, key: str) -> dict:
        raise WorkflowValidationError([Problem("nodes", "empty")])

    with pytest.raises(WorkflowValidationError):
        await run({"items": [0, 1], "body": BODY, "continue_on_error": True}, run_workflow=body)


async def test_cancelling_the_loop_cancels_running_bodies() -> None:
    """Cancellation reaches every body in flight at once."""
    cancelled = 0

    async def body(workflow: Any, params: dict, key: str) -> dict:
        nonlocal cancelled
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return ok(None)

    ctx = FakeContext(BLOCK, {"items": list(range(10)), "body": BODY}, run_workflow=body)
    task = asyncio.ensure_future(BLOCK.run(ctx))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 4


# -- validation ----------------------------------------------------------------------------------


def test_paths_and_ports() -> None:
    """Expressions, deferred params and the opaque body are declared for the engine."""
    assert Loop.expression_paths == ("items", "filter", "map")
    assert Loop.deferred_paths == ("params.*",)
    assert Loop.opaque_paths == ("body",)
    assert Loop.output_ports({"items": "$input"}) == ("default", "empty")


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"items": [], "params": {"a": 1}}, "c.params"),
        ({"items": [], "body": {"workflow": "x", "nodes": {}}}, "c.body"),
        ({"items": [], "body": {"workflow": ""}}, "c.body.workflow"),
    ],
)
def test_check(config: dict, path: str) -> None:
    """params need a body; a workflow reference stands alone and is a non-empty string."""
    [problem] = Loop.check(config, "c")
    assert problem.path == path
    assert Loop.check({"items": [], "body": {"workflow": "a.conv3n.json"}}, "c") == []


def test_config_schema() -> None:
    """The schema is valid and closed."""
    jsonschema.Draft202012Validator.check_schema(Loop.config_schema)
    validator = jsonschema.Draft202012Validator(Loop.config_schema)
    good = {
        "items": "$input.rows",
        "filter": "$item.ok",
        "map": "$item.id",
        "batch_size": 10,
        "body": BODY,
        "params": {"x": "{{ $item.id }}"},
        "concurrency": 8,
        "continue_on_error": True,
    }
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({"filter": "true"}))
    assert list(validator.iter_errors({"items": [], "batch_size": 0}))
    assert list(validator.iter_errors({"items": [], "other": 1}))
