"""``std/condition``: routes its input to ``true``/``false``, or to the first matching case."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import BlockError
from ...types import json_type
from ..base import Block, NodeContext, Output

if TYPE_CHECKING:
    from ...errors import Problem

PORT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
RESERVED_PORTS = ("error",)


def require_bool(value: Any, key: str, block_type: str, where: str = "") -> bool:
    """``value`` if it is a boolean, else a non-retryable error naming the key and the type."""
    if isinstance(value, bool):
        return value
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise BlockError(
        f"config key {key!r}{where}: the expression must give a boolean, got "
        f"{json_type(value)} {shown}",
        block_type=block_type,
        retryable=False,
    )


class Condition(Block):
    eager = True
    type = "std/condition"
    title = "Condition"
    description = (
        "Sends its input to port true or false, or to the first case whose expression holds."
    )
    icon = "◇"
    ports = ("true", "false")
    expression_paths = ("expression", "cases.*.expression")
    config_schema = {
        "type": "object",
        "properties": {
            "expression": {
                "type": ["string", "boolean"],
                "description": "expression (without {{ }}) giving a boolean: port true or false",
            },
            "cases": {
                "type": "array",
                "minItems": 1,
                "description": "multi-way switch: the first case whose expression is true wins",
                "items": {
                    "type": "object",
                    "properties": {
                        "port": {
                            "type": "string",
                            "pattern": PORT_RE.pattern,
                            "description": "port to emit when this case holds",
                        },
                        "expression": {
                            "type": ["string", "boolean"],
                            "description": "expression (without {{ }}) giving a boolean",
                        },
                    },
                    "required": ["port", "expression"],
                    "additionalProperties": False,
                },
            },
            "default_port": {
                "type": "string",
                "pattern": PORT_RE.pattern,
                "default": "default",
                "description": "port emitted when no case holds",
            },
        },
        "additionalProperties": False,
    }

    @classmethod
    def output_ports(cls, config: Mapping[str, Any]) -> tuple[str, ...]:
        cases = config.get("cases")
        if not isinstance(cases, list) or not cases:
            return cls.ports
        ports: list[str] = []
        for case in cases:
            port = case.get("port") if isinstance(case, Mapping) else None
            if isinstance(port, str) and port not in ports:
                ports.append(port)
        default_port = config.get("default_port", "default")
        if isinstance(default_port, str) and default_port not in ports:
            ports.append(default_port)
        return tuple(ports)

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        from ...errors import Problem

        problems: list[Problem] = []
        has_expression, has_cases = "expression" in config, "cases" in config
        if has_expression == has_cases:
            problems.append(Problem(path, "give exactly one of 'expression' or 'cases'"))
        if "default_port" in config and not has_cases:
            problems.append(Problem(f"{path}.default_port", "'default_port' needs 'cases'"))
        ports = [
            (f"{path}.cases.{i}.port", case.get("port"))
            for i, case in enumerate(config.get("cases") or [])
            if isinstance(case, Mapping)
        ]
        ports.append((f"{path}.default_port", config.get("default_port", "default")))
        for where, port in ports:
            if port in RESERVED_PORTS:
                problems.append(Problem(where, f"port {port!r} is reserved for failures"))
        return problems

    async def run(self, ctx: NodeContext) -> Output:
        cfg = ctx.config
        if "cases" in cfg:
            for i, case in enumerate(cfg["cases"]):
                value = ctx.evaluate(case["expression"])
                if require_bool(value, f"cases[{i}].expression", self.type):
                    return Output(ctx.input, case["port"])
            return Output(ctx.input, cfg.get("default_port", "default"))
        if "expression" not in cfg:
            raise BlockError(
                "give exactly one of 'expression' or 'cases'", block_type=self.type, retryable=False
            )
        value = ctx.evaluate(cfg["expression"])
        return Output(
            ctx.input, "true" if require_bool(value, "expression", self.type) else "false"
        )
