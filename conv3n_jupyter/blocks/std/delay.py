"""``std/delay``: waits for a duration or until a moment, then passes its input through."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..._durations import parse_duration
from ...errors import BlockError
from ..base import Block, NodeContext

if TYPE_CHECKING:
    from ...errors import Problem

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}


class Delay(Block):
    type = "std/delay"
    title = "Delay"
    description = (
        "Waits for a duration or until a timestamp; cancelling the execution ends the wait."
    )
    icon = "⏱"
    config_schema = {
        "type": "object",
        "properties": {
            "duration": {
                "type": ["number", "string"],
                "description": "how long to wait, counted in `unit`; a string may carry its own "
                "unit ('1.5s', '2m')",
            },
            "unit": {
                "type": "string",
                "enum": ["ms", "s", "m"],
                "default": "ms",
                "description": "unit of a plain-number duration",
            },
            "until": {
                "type": "string",
                "minLength": 1,
                "description": "ISO 8601 timestamp to wait for; without a UTC offset it is UTC",
            },
        },
        "additionalProperties": False,
    }

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        from ...errors import Problem

        if ("duration" in config) == ("until" in config):
            return [Problem(path, "give exactly one of 'duration' or 'until'")]
        if "until" in config and "unit" in config:
            return [Problem(f"{path}.unit", "'unit' applies to 'duration', not to 'until'")]
        return []

    async def run(self, ctx: NodeContext) -> Any:
        cfg = ctx.config
        if ("duration" in cfg) == ("until" in cfg):
            raise _error("give exactly one of 'duration' or 'until'")
        if "until" in cfg:
            seconds = (_parse_until(cfg["until"]) - datetime.now(timezone.utc)).total_seconds()
            seconds = max(seconds, 0.0)
        else:
            seconds = _duration_seconds(cfg["duration"], cfg.get("unit", "ms"))
        if ctx.timeout is not None and seconds > ctx.timeout:
            raise _error(
                f"the wait of {seconds:g}s is longer than the node's remaining time limit of "
                f"{ctx.timeout:g}s"
            )
        if seconds > 0:
            await asyncio.sleep(seconds)
        return ctx.input


def _error(reason: str) -> BlockError:
    return BlockError(reason, block_type=Delay.type, retryable=False)


def _duration_seconds(value: Any, unit: Any) -> float:
    if unit not in _UNIT_SECONDS:
        raise _error(f"config key 'unit' must be ms, s or m, got {unit!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                return parse_duration(text)
            except ValueError as exc:
                raise _error(f"config key 'duration': {exc}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(f"config key 'duration' must be a number, got {type(value).__name__}")
    if value != value or value < 0 or value == float("inf"):
        raise _error(
            f"config key 'duration' must be a finite number of zero or more, got {value!r}"
        )
    return float(value) * _UNIT_SECONDS[unit]


def _parse_until(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _error(
            f"config key 'until' must be an ISO 8601 timestamp, got {type(value).__name__}"
        )
    text = value.strip()
    if text.endswith(("Z", "z")):
        # datetime.fromisoformat accepts 'Z' only from Python 3.11 on.
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _error(f"config key 'until': {value!r} is not an ISO 8601 timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment
