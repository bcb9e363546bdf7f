"""``std/loop``: filters and maps a list, optionally running a sub-workflow per item or batch.

Without ``body`` the loop is pure expressions: ``items`` → ``filter`` → ``map`` (each with
``$item`` and ``$index``), then optional batching. With ``body``, each item (or batch) runs
the body workflow with ``$params.item`` (or ``$params.batch``), ``$params.index`` and the
loop's own ``params``; at most ``concurrency`` bodies run at once and results keep input order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import BlockError, Conv3nError, ExpressionError, WorkflowValidationError
from ...types import json_type
from ..base import Block, NodeContext, Output
from .condition import require_bool

if TYPE_CHECKING:
    from ...errors import Problem


class Loop(Block):
    type = "std/loop"
    title = "Loop"
    description = "Filters and maps a list, or runs a sub-workflow for each item or batch."
    icon = "↻"
    ports = ("default", "empty")
    eager = True
    expression_paths = ("items", "filter", "map")
    deferred_paths = ("params.*",)
    opaque_paths = ("body",)
    config_schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": ["string", "array"],
                "description": "expression (without {{ }}) giving the list to loop over, or a list",
            },
            "filter": {
                "type": "string",
                "description": "expression with $item and $index; false leaves the item out",
            },
            "map": {
                "type": "string",
                "description": "expression with $item and $index giving each item's new value",
            },
            "batch_size": {
                "type": ["integer", "string"],
                "minimum": 1,
                "description": "group items into lists of this size (the body gets $params.batch)",
            },
            "body": {
                "type": "object",
                "description": 'an inline workflow, or {"workflow": ID-or-path}, '
                "run per item or batch",
            },
            "params": {
                "type": "object",
                "description": "more params for the body; {{ }} here sees $item and $index",
            },
            "concurrency": {
                "type": ["integer", "string"],
                "minimum": 1,
                "default": 4,
                "description": "how many bodies may run at the same time",
            },
            "continue_on_error": {
                "type": "boolean",
                "default": False,
                "description": 'keep going when a body fails; its entry becomes {"error": ...}',
            },
        },
        "required": ["items"],
        "additionalProperties": False,
    }

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        from ...errors import Problem

        problems: list[Problem] = []
        body = config.get("body")
        if "params" in config and body is None:
            problems.append(Problem(f"{path}.params", "'params' are for the body; add a 'body'"))
        if isinstance(body, Mapping) and "workflow" in body:
            if set(body) != {"workflow"}:
                problems.append(
                    Problem(f"{path}.body", "a body that names a workflow has no other keys")
                )
            elif not isinstance(body["workflow"], str) or not body["workflow"]:
                problems.append(Problem(f"{path}.body.workflow", "must be a workflow id or a path"))
        return problems

    async def run(self, ctx: NodeContext) -> Output:
        cfg = ctx.config
        items = _items(ctx)
        items = _filter_and_map(ctx, items, cfg.get("filter"), cfg.get("map"))
        if not items:
            return Output([], "empty")
        batch_size = _positive_int(cfg.get("batch_size"), "batch_size")
        units: list[Any] = (
            [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
            if batch_size
            else items
        )
        body = cfg.get("body")
        if body is None:
            return Output(units, "default")
        if not isinstance(body, Mapping):
            raise _error(f"config key 'body' must be an object, got {json_type(body)}")
        concurrency = _positive_int(cfg.get("concurrency", 4), "concurrency") or 4
        results = await _run_bodies(
            ctx,
            body,
            units,
            batched=bool(batch_size),
            concurrency=concurrency,
            continue_on_error=cfg.get("continue_on_error", False) is True,
        )
        return Output(results, "default")


def _error(reason: str) -> BlockError:
    return BlockError(reason, block_type=Loop.type, retryable=False)


def _positive_int(value: Any, key: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error(f"config key {key!r} must be a whole number of 1 or more, got {value!r}")
    return value


def _items(ctx: NodeContext) -> list[Any]:
    if "items" not in ctx.config:
        raise _error("config key 'items' is required")
    items = ctx.evaluate(ctx.config["items"])
    if isinstance(items, tuple):
        items = list(items)
    if not isinstance(items, list):
        raise _error(f"config key 'items' must give a list, got {json_type(items)}")
    return items


def _locate(exc: ExpressionError, key: str, index: int) -> ExpressionError:
    return ExpressionError(
        f"{exc.reason} (at $index {index})",
        expression=exc.expression,
        node=exc.node,
        key=exc.key or key,
    )


def _filter_and_map(ctx: NodeContext, items: list[Any], flt: Any, mapper: Any) -> list[Any]:
    evaluate = ctx.evaluate
    if flt is not None:
        kept: list[Any] = []
        for index, item in enumerate(items):
            try:
                keep = evaluate(flt, item=item, index=index)
            except ExpressionError as exc:
                raise _locate(exc, "filter", index) from exc
            if keep is True or require_bool(keep, "filter", Loop.type, f" (at $index {index})"):
                kept.append(item)
        items = kept
    if mapper is not None:
        index = 0
        try:
            # A plain loop, not a comprehension, so the failing index is known.
            mapped = []
            for index, item in enumerate(items):
                mapped.append(evaluate(mapper, item=item, index=index))
        except ExpressionError as exc:
            raise _locate(exc, "map", index) from exc
        items = mapped
    return items


def _render(ctx: NodeContext, value: Any, item: Any, index: int) -> Any:
    if isinstance(value, dict):
        return {k: _render(ctx, v, item, index) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(ctx, v, item, index) for v in value]
    return ctx.evaluate(value, item=item, index=index)


def _failure(result: Mapping[str, Any]) -> dict[str, Any]:
    """The failing node and message of a sub-execution result that did not succeed."""
    error = result.get("error")
    if isinstance(error, Mapping) and error.get("node"):
        return {"node": error["node"], "message": str(error.get("message") or "failed")}
    nodes = result.get("nodes")
    if isinstance(nodes, Mapping):
        for node_id, node in nodes.items():
            if isinstance(node, Mapping) and node.get("status") == "error":
                found = node.get("error")
                if found is None and isinstance(node.get("data"), Mapping):
                    found = node["data"].get("error")
                message = found.get("message") if isinstance(found, Mapping) else found
                return {"node": node_id, "message": str(message or "failed")}
    if isinstance(error, Mapping):
        return {"node": None, "message": str(error.get("message") or "failed")}
    return {"node": None, "message": str(error or f"status {result.get('status')!r}")}


async def _run_bodies(
    ctx: NodeContext,
    body: Mapping[str, Any],
    units: list[Any],
    *,
    batched: bool,
    concurrency: int,
    continue_on_error: bool,
) -> list[Any]:
    loop_params = ctx.config.get("params") or {}
    if not isinstance(loop_params, Mapping):
        raise _error(f"config key 'params' must be an object, got {json_type(loop_params)}")
    results: list[Any] = [None] * len(units)
    pending: Iterator[int] = iter(range(len(units)))
    name = "batch" if batched else "item"

    async def run_one(index: int) -> None:
        unit = units[index]
        params = {k: _render(ctx, v, unit, index) for k, v in loop_params.items()}
        params[name] = unit
        params["index"] = index
        try:
            # One key per unit: the engine derives the sub-execution's id from it.
            result = await ctx.run_workflow(body, params, key=f"body.{index}")
        except WorkflowValidationError:
            raise
        except Conv3nError as exc:
            failure: dict[str, Any] = {"node": getattr(exc, "node", None), "message": str(exc)}
        else:
            if result.get("status") == "success":
                results[index] = result.get("output")
                return
            failure = _failure(result)
        failure = {"index": index, **failure}
        if continue_on_error:
            results[index] = {"error": failure}
            return
        at = f" at node {failure['node']!r}" if failure["node"] else ""
        raise BlockError(
            f"the loop body failed for {name} {index}{at}: {failure['message']}",
            block_type=Loop.type,
            details=failure,
        )

    async def worker() -> None:
        # Workers pull indices from one iterator: no task per item, and at most `concurrency`
        # bodies in flight.
        for index in pending:
            await run_one(index)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(units)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results
