"""``std/noop``: passes its input through unchanged (placeholders, joins, benchmarks)."""

from __future__ import annotations

from typing import Any

from ..base import Block, NodeContext


class Noop(Block):
    eager = True
    type = "std/noop"
    title = "No-op"
    description = "Passes its input through, or emits `value` when set."
    icon = "○"
    config_schema = {
        "type": "object",
        "properties": {"value": {"description": "data to emit instead of the input"}},
        "additionalProperties": False,
    }

    async def run(self, ctx: NodeContext) -> Any:
        return ctx.config.get("value", ctx.input)
