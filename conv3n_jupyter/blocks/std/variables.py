"""``std/set_var`` and ``std/get_var``: variables scoped to the execution, workflow or everything.

Execution-scoped variables live in ``ctx.vars`` (``$vars`` in expressions) and end with the
execution. ``workflow`` and ``global`` scopes persist in the store (``Runtime.store``), so a
counter survives restarts; a run without a store refuses them (``conv3n run --store`` or
``conv3n serve`` give one). A workflow-scoped variable belongs to the saved workflow's id when
the run records one, else to the workflow's ``id`` field, else to its ``name``.

Whatever the scope, ``set_var`` also puts the value into ``$vars`` for the rest of the run, and a
persistent ``get_var`` that finds its variable does too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...errors import AlreadyExists, BlockError, NotFound, StoreError
from ..base import Block, NodeContext

SCOPES = ("execution", "workflow", "global")

_KEY = {"type": "string", "minLength": 1, "description": "variable name ($vars.NAME)"}
_SCOPE = {
    "type": "string",
    "enum": list(SCOPES),
    "default": "execution",
    "description": "execution: this run only; workflow: every run of this workflow (kept in the "
    "store, keyed by the saved workflow's id, else the workflow's `id`, else its `name`); "
    "global: every run of every workflow (kept in the store)",
}


def _error(message: str, block_type: str) -> BlockError:
    return BlockError(message, block_type=block_type, retryable=False)


def _key_and_scope(ctx: NodeContext, block_type: str) -> tuple[str, str]:
    key = ctx.config.get("key")
    if not isinstance(key, str) or not key:
        raise _error(f"config key 'key' must be a non-empty string, got {key!r}", block_type)
    scope = ctx.config.get("scope", "execution")
    if scope not in SCOPES:
        raise _error(
            f"config key 'scope' must be one of {', '.join(SCOPES)}, got {scope!r}", block_type
        )
    return key, scope


def workflow_key(execution: Any) -> str:
    """The id that workflow-scoped variables of ``execution`` belong to.

    The saved workflow's id when a store recorder records the run under one, else the
    workflow's ``id`` field, else its ``name`` (stable across runs of the same file).
    """
    for listener in getattr(execution, "listeners", ()):
        saved = getattr(listener, "workflow_id", None)
        if isinstance(saved, str) and saved and getattr(listener, "execution", None) is execution:
            return saved
    wf = execution.workflow
    return str(wf.id or wf.name)


def _store_of(ctx: NodeContext, scope: str, block_type: str) -> tuple[Any, str | None]:
    """The store and the workflow key for a persistent scope; raises without a store."""
    execution = getattr(ctx, "execution", None)
    runtime = getattr(execution, "runtime", None)
    store = getattr(runtime, "store", None)
    if store is None:
        # Falling back to execution scope would silently lose the value at the end of the run.
        raise _error(
            f"scope {scope!r} needs a store: run with 'conv3n run --store' (the store of "
            "CONV3N_DATABASE_URL) or under 'conv3n serve'",
            block_type,
        )
    return store, (workflow_key(execution) if scope == "workflow" else None)


def _set(store: Any, key: str, value: Any, scope: str, workflow_id: str | None) -> None:
    from ...store.variables import set_variable

    try:
        set_variable(store, key, value, scope=scope, workflow_id=workflow_id)
    except AlreadyExists:
        # Another run inserted the same key between our update and insert: now it updates.
        set_variable(store, key, value, scope=scope, workflow_id=workflow_id)


_MISSING = object()


def _get(store: Any, key: str, scope: str, workflow_id: str | None) -> Any:
    from ...store.variables import read_variable

    try:
        return read_variable(store, key, scope=scope, workflow_id=workflow_id)
    except NotFound:
        return _MISSING


class SetVar(Block):
    eager = True
    type = "std/set_var"
    title = "Set variable"
    description = (
        "Stores a value under a name (scope execution, or workflow/global kept in the store); "
        "emits the value."
    )
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
        key, scope = _key_and_scope(ctx, self.type)
        value = ctx.config.get("value")
        if scope != "execution":
            store, owner = _store_of(ctx, scope, self.type)
            try:
                await asyncio.to_thread(_set, store, key, value, scope, owner)
            except StoreError as exc:
                raise BlockError(
                    f"cannot store variable {key!r} ({scope} scope): {exc}", block_type=self.type
                ) from exc
        ctx.vars[key] = value
        return value


class GetVar(Block):
    eager = True
    type = "std/get_var"
    title = "Get variable"
    description = (
        "Emits a variable's value (scope execution, or workflow/global from the store), "
        "or `default` when the name is not set."
    )
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
        owner: str | None = None
        if scope == "execution":
            if key in ctx.vars:
                return ctx.vars[key]
        else:
            store, owner = _store_of(ctx, scope, self.type)
            try:
                found = await asyncio.to_thread(_get, store, key, scope, owner)
            except StoreError as exc:
                raise BlockError(
                    f"cannot read variable {key!r} ({scope} scope): {exc}", block_type=self.type
                ) from exc
            if found is not _MISSING:
                ctx.vars[key] = found
                return found
        if "default" in ctx.config:
            return ctx.config["default"]
        where = f"scope {scope!r}" if owner is None else f"workflow {owner!r}"
        raise _error(
            f"variable {key!r} is not set in {where} and the node has no 'default'", self.type
        )
