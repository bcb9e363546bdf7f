"""``std/subworkflow``: run another workflow as one node and emit its output.

The child is named by exactly one of ``workflow_id`` (a saved workflow: its current version, or
``version``), ``path`` (a workflow file relative to the parent's file, never outside that
folder) or ``workflow`` (an inline workflow object; a string is read as a path when it ends in
``.json``/``.yaml``/``.yml`` or holds a ``/``, else as a saved workflow's id). ``params`` (with
``{{ }}`` templates, as in any config) become the child's ``$params``.

``wait: true`` (the default) runs the child to its end: the node's data is the child's
``output``, and a failed child fails the node with the child's error, naming the child
execution and node. ``wait: false`` starts the child and emits ``{"execution_id", "status":
"started"}`` at once; the child keeps running after the node (its failure is only recorded),
and the engine's runtime waits for it before it closes.

With a store (``Runtime.store``) the child is recorded as an execution of its own whose
``parent_id`` is the calling execution's; without one it runs unrecorded. Sub-workflows may
nest up to ``MAX_DEPTH`` levels, so a workflow that calls itself fails cleanly.

    {"type": "std/subworkflow",
     "config": {"path": "enrich.conv3n.json", "params": {"user": "{{ $input.id }}"}}}
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._paths import resolve_inside
from ...errors import BlockError, Conv3nError, Problem
from ..base import Block, NodeContext

if TYPE_CHECKING:
    from ...engine.executor import Execution
    from ...model import Workflow

MAX_DEPTH = 16
"""How deep sub-workflows may nest (a workflow calling itself stops here with an error)."""

_SOURCES = ("workflow", "workflow_id", "path")
_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def _error(message: str, *, retryable: bool = False, **details: Any) -> BlockError:
    return BlockError(message, block_type=SubWorkflow.type, retryable=retryable, details=details)


def _reference(config: Mapping[str, Any]) -> tuple[str, Any]:
    """``("id" | "path" | "inline", value)`` from the config's one workflow source."""
    given = [k for k in _SOURCES if config.get(k) is not None]
    if len(given) != 1:
        raise _error(
            "give exactly one of 'workflow_id', 'path' or 'workflow'"
            + (f"; got {', '.join(given)}" if given else "")
        )
    key = given[0]
    value = config[key]
    if key == "workflow_id":
        return "id", str(value)
    if key == "path":
        return "path", value
    if isinstance(value, Mapping):
        return "inline", value
    if isinstance(value, str) and value:
        looks_like_file = value.endswith(_FILE_SUFFIXES) or "/" in value or "\\" in value
        return ("path" if looks_like_file else "id"), value
    raise _error(f"config key 'workflow' must be an object, a path or an id, got {value!r}")


def _base_folder(parent: Execution) -> Path:
    """The folder a child's ``path`` is relative to: the parent file's, else the files root."""
    source = parent.workflow.source or ""
    file_part = source.split("#", 1)[0]
    if file_part and Path(file_part).is_file():
        return Path(os.path.realpath(file_part)).parent
    runtime = parent.runtime
    return runtime.files_root if runtime is not None else Path.cwd()


class SubWorkflow(Block):
    type = "std/subworkflow"
    title = "Sub-workflow"
    description = (
        "Runs another workflow (saved id, file path relative to this one, or inline) with "
        "params; emits its output. Recorded as a child execution when a store is configured."
    )
    icon = "⧉"
    opaque_paths = ("workflow",)
    config_schema = {
        "type": "object",
        "properties": {
            "workflow": {
                "type": ["object", "string"],
                "description": "an inline workflow, or a path (*.json) / saved workflow id",
            },
            "workflow_id": {
                "type": "string",
                "minLength": 1,
                "description": "a workflow saved in the store",
            },
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "with workflow_id: run this version instead of the current one",
            },
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "a workflow file, relative to this workflow's file",
            },
            "params": {"type": "object", "description": "the child's $params ({{ }} allowed)"},
            "wait": {
                "type": "boolean",
                "default": True,
                "description": "true: emit the child's output; false: start it and go on",
            },
        },
        "additionalProperties": False,
    }

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        given = [k for k in _SOURCES if k in config]
        if len(given) != 1:
            found = f"; got {', '.join(given)}" if given else ""
            return [
                Problem(path, f"give exactly one of 'workflow_id', 'path' or 'workflow'{found}")
            ]
        if "version" in config and "workflow_id" not in config:
            return [
                Problem(f"{path}.version", "'version' pins a saved workflow: add 'workflow_id'")
            ]
        return []

    async def run(self, ctx: NodeContext) -> Any:
        parent: Execution | None = getattr(ctx, "execution", None)
        if parent is None:
            raise _error("std/subworkflow needs the engine's execution context")
        if parent.depth + 1 > MAX_DEPTH:
            raise _error(
                f"sub-workflows nest deeper than {MAX_DEPTH} levels (does "
                f"{parent.workflow.name!r} call itself?)"
            )
        config = ctx.config
        params = config.get("params") or {}
        if not isinstance(params, Mapping):
            raise _error(f"config key 'params' must be an object, got {params!r}")
        store = getattr(parent.runtime, "store", None)
        wf, saved_id, version = await self._load(parent, ctx.node_id, config, store)
        from ...engine.executor import Execution

        try:
            child = Execution(
                wf,
                params,
                trigger=parent.trigger,
                runtime=parent.runtime,
                execution_id=uuid.uuid4().hex,
                depth=parent.depth + 1,
            )
        except Conv3nError as exc:
            raise _error(f"sub-workflow {wf.name!r}: {exc}") from exc
        if config.get("wait", True) is False:
            task = asyncio.ensure_future(_run_child(child, parent, store, saved_id, version))
            ctx.resource("std/subworkflow.background", _Background).add(task)
            return {"execution_id": child.id, "status": "started"}
        result = await _run_child(child, parent, store, saved_id, version)
        if result["status"] != "success":
            raise _child_failed(wf.name, child.id, result)
        return result["output"]

    async def _load(
        self, parent: Execution, node_id: str, config: Mapping[str, Any], store: Any
    ) -> tuple[Workflow, str | None, int | None]:
        from ...errors import WorkflowValidationError
        from ...model import load, parse

        kind, ref = _reference(config)
        try:
            if kind == "inline":
                source = f"{parent.workflow.source or parent.workflow.name}#{node_id}"
                inline = {"name": f"{parent.workflow.name}:{node_id}", **ref}
                return parse(inline, source=source), None, None
            if kind == "path":
                return load(resolve_inside(_base_folder(parent), ref)), None, None
            return await _load_saved(store, ref, config.get("version"))
        except WorkflowValidationError as exc:
            problems = "; ".join(
                f"{p.path}: {p.reason}" if p.path else p.reason for p in exc.problems
            )
            raise _error(f"sub-workflow {exc.source or ref!r} is invalid: {problems}") from exc


async def _load_saved(
    store: Any, workflow_id: str, version: Any
) -> tuple[Workflow, str | None, int | None]:
    from ...errors import NotFound, StoreError
    from ...model import parse

    if store is None:
        raise _error(
            f"sub-workflow {workflow_id!r} is a saved workflow id, which needs a store: run "
            "with 'conv3n run --store' or under 'conv3n serve' (or give a 'path')"
        )
    from ...store.workflows import read_workflow

    try:
        saved = await asyncio.to_thread(read_workflow, store, workflow_id, version=version)
    except NotFound as exc:
        raise _error(f"sub-workflow: {exc}") from exc
    except StoreError as exc:
        raise _error(f"sub-workflow {workflow_id!r}: {exc}", retryable=True) from exc
    wf = parse(saved["definition"], source=f"workflow {workflow_id!r}")
    return wf, workflow_id, int(saved["version"])


async def _run_child(
    child: Execution, parent: Execution, store: Any, saved_id: str | None, version: int | None
) -> dict[str, Any]:
    if store is None:
        return await child.run()
    from ...store.recorder import Recorder

    recorder = Recorder(store, child, workflow_id=saved_id, workflow_version=version)
    # Engine-made children (loop bodies) have ids "ROOT/key…": the recorded ancestor is ROOT.
    await recorder.start(parent_id=parent.id.split("/", 1)[0])
    child.listeners.insert(0, recorder)
    try:
        return await child.run()
    finally:
        await recorder.finish()


def _child_failed(name: str, child_id: str, result: dict[str, Any]) -> BlockError:
    """The node's error for a failed child: it names the child execution and node, and for
    nested sub-workflows the innermost failure (not one message wrapped per level)."""
    error = result.get("error") or {}
    node = error.get("node")
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    cause = details.get("cause") if isinstance(details, dict) else None
    if not isinstance(cause, dict):
        cause = {
            "execution_id": child_id,
            "node": node,
            "message": str(error.get("message") or result["status"]),
        }
    at = f" at node {node!r}" if node else ""
    inner = ""
    if cause["execution_id"] != child_id:
        inner_at = f", node {cause['node']!r}" if cause.get("node") else ""
        inner = f" (innermost: execution {cause['execution_id']}{inner_at})"
    return _error(
        f"sub-workflow {name!r} (execution {child_id}) {result['status']}{at}: "
        f"{cause['message']}{inner}",
        execution_id=child_id,
        node=node,
        error={k: v for k, v in error.items() if k != "details"},
        cause=cause,
    )


class _Background:
    """Children started with ``wait: false``; the runtime awaits them when it closes."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Future[Any]] = set()

    def add(self, task: asyncio.Future[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed child is in its own record, not a crash here

    async def aclose(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def __repr__(self) -> str:
        return f"<subworkflow background {len(self.tasks)} running>"
