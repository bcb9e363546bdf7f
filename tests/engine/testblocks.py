"""Blocks used only by the engine tests: they record what the scheduler did."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from conv3n_jupyter.blocks import Block, Output
from conv3n_jupyter.errors import BlockError


class Recorder:
    """Shared log of starts/ends and the peak number of nodes running at once."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.peak = 0
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


RECORDER = Recorder()


class Probe(Block):
    """`test/probe`: sleeps `sleep` ms, fails its first `fail` calls, emits `port`, returns `value` or its input."""

    type = "test/probe"
    config_schema = {
        "type": "object",
        "properties": {
            "sleep": {"type": "number"},
            "fail": {"type": "integer"},
            "fatal": {"type": "boolean"},
            "port": {"type": "string"},
            "value": {},
        },
        "additionalProperties": False,
    }
    ports = ("default", "a", "b")

    async def run(self, ctx: Any) -> Any:
        rec = RECORDER
        rec.calls[ctx.node_id] += 1
        rec.events.append(("start", ctx.node_id))
        rec.running += 1
        rec.peak = max(rec.peak, rec.running)
        try:
            if ctx.config.get("sleep"):
                await asyncio.sleep(ctx.config["sleep"] / 1000)
            if rec.calls[ctx.node_id] <= ctx.config.get("fail", 0):
                raise BlockError(
                    f"planned failure {rec.calls[ctx.node_id]}",
                    retryable=not ctx.config.get("fatal", False),
                )
        finally:
            rec.running -= 1
            rec.events.append(("end", ctx.node_id))
        value = ctx.config.get("value", ctx.input)
        return Output(value, ctx.config.get("port", "default"))
