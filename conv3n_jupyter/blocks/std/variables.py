"""``std/set_var`` and ``std/get_var``: variables scoped to the execution, workflow or everything.

Execution-scoped variables live in ``ctx.vars`` (``$vars`` in expressions) and end with the
execution; workflow and global scopes persist in the store.
"""

from __future__ import annotations

from typing import Any

from ...errors import BlockError
from ..base import Block, NodeContext

SCOPES = ("execution", "workflow", "global")

_KEY = {"type": "string", "minLength": 1, "description": "variable name ($vars.NAME)"}
_SCOPE = {
    "type": "string",
    "enum": list(SCOPES),
    "default": "execution",
    "description": "execution: this run only; workflow: this workflow's runs; global: every run",
}


def _key_and_scope(ctx: NodeContext, block_type: str) -> tuple[str, str]:
    key = ctx.config.get("key")
    if not isinstance(key, str) or not key:
        raise BlockError(
            f"config key 'key' must be a non-empty string, got {key!r}",
            block_type=block_type,
            retryable=False,
        )
    scope = ctx.config.get("scope", "execution")
    if scope not in SCOPES:
        raise BlockError(
            f"config key 'scope' must be one of {', '.join(SCOPES)}, got {scope!r}",
            block_type=block_type,
            retryable=False,
        )
    if scope != "execution":
        # Falling back to execution scope would silently lose the value at the end of the run.
        raise BlockError(
            f"scope {scope!r} needs a store (run with a store configured)",
            block_type=block_type,
            retryable=False,
        )
    return key, scope


class SetVar(Block):
    eager = True
    type = "std/set_var"
    title = "Set variable"
    description = "Stores a value under a name; emits the value."
    icon = "≔"
    config_schema = {
        "type": "object",
        "properties": {
            "key": _KEY,
            "value": {"description": "the value to store (any JSON value)"},
            "scope": _SCOPE,
        },
        "required": ["key", "value"],
        "additionalProperties": False,
    }

    async def run(self, ctx: NodeContext) -> Any:
        key, _scope = _key_and_scope(ctx, self.type)
        value = ctx.config.get("value")
        ctx.vars[key] = value
        return value


class GetVar(Block):
    eager = True
    type = "std/get_var"
    title = "Get variable"
    description = "Emits a stored value, or `default` when the name is not set."
    icon = "≕"
    config_schema = {
        "type": "object",
        "properties": {
            "key": _KEY,
            "scope": _SCOPE,
            "default": {"description": "value emitted when the variable is not set"},
        },
        "required": ["key"],
        "additionalProperties": False,
    }

    async def run(self, ctx: NodeContext) -> Any:
        key, scope = _key_and_scope(ctx, self.type)
        if key in ctx.vars:
            return ctx.vars[key]
        if "default" in ctx.config:
            return ctx.config["default"]
        raise BlockError(
            f"variable {key!r} is not set in scope {scope!r} and the node has no 'default'",
            block_type=self.type,
            retryable=False,
        )
