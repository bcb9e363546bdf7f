"""Shapes of request and response bodies, for the OpenAPI document and ``/docs``.

Request bodies are read by the routes themselves (so that malformed JSON is a 400 with its
position and a workflow is checked by the engine's validator, which reports every problem),
but their schemas are these models. Responses are documented with them, not re-validated.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HELLO: dict[str, Any] = {
    "name": "hello",
    "params": {"name": {"type": "string", "default": "World"}},
    "nodes": {
        "greet": {
            "type": "std/transform",
            "config": {
                "input": "{{ $params }}",
                "operations": [{"type": "set", "values": {"greeting": "Hello, {{ $item.name }}!"}}],
            },
        }
    },
}


class ErrorInfo(BaseModel):
    code: str = Field(
        description="not_found, invalid_workflow, invalid_request, conflict, forbidden, "
        "gone, payload_too_large or internal",
        examples=["not_found"],
    )
    message: str = Field(examples=["execution 'e1' not found"])
    details: Any = Field(
        None, description="For invalid_workflow: every problem as {path, node, key, reason}"
    )


class ErrorResponse(BaseModel):
    """Every error answer."""

    error: ErrorInfo


class Workflow(BaseModel):
    """A workflow in the conv3n format (``conv3n schema`` prints its full JSON Schema)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [HELLO]})

    name: str = Field(description="The workflow's name")
    nodes: dict[str, Any] | list[Any] = Field(description="The nodes, by id")
    id: str | None = Field(None, description="Saved workflows: the id to save it under")


class RunRequest(BaseModel):
    """``POST /api/run``: a workflow with params, a saved workflow by id, or a bare workflow.

    A body without ``workflow`` and ``workflow_id`` is taken as the workflow itself.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"workflow": HELLO, "params": {"name": "Ada"}},
                {"workflow_id": "hello", "params": {"name": "Ada"}, "version": 1},
            ]
        },
    )

    workflow: dict[str, Any] | None = Field(None, description="The workflow to run")
    workflow_id: str | None = Field(None, description="Run this saved workflow")
    version: int | None = Field(None, description="Its version (default: the current one)")
    params: dict[str, Any] | None = Field(None, description="The run's parameters")


class RunSavedRequest(BaseModel):
    """``POST /api/workflows/{id}/run`` (the body is optional)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"params": {"name": "Ada"}}]}
    )

    params: dict[str, Any] | None = Field(None, description="The run's parameters")
    version: int | None = Field(None, description="The version to run (default: the current one)")


class ExecutionResult(BaseModel):
    """The execution result: the same JSON as ``conv3n run --output json``."""

    model_config = ConfigDict(extra="allow")

    execution_id: str
    workflow: str | None = None
    status: str = Field(description="success, error, cancelled or crashed", examples=["success"])
    started_at: Any = None
    duration_ms: float | None = None
    params: dict[str, Any] = {}
    nodes: dict[str, Any] = Field({}, description="Node results by node id")
    output: Any = None
    error: dict[str, Any] | None = None


class Queued(BaseModel):
    """``?wait=false``: the execution was queued."""

    execution_id: str
    status: str = Field(examples=["queued"])
    links: dict[str, str] = Field(description="self, events and cancel URLs")


class SavedWorkflow(BaseModel):
    """A saved workflow with its current (or requested) version's definition."""

    id: str
    name: str
    version: int
    definition: dict[str, Any] | None = None
    created_at: float
    updated_at: float


class WorkflowList(BaseModel):
    items: list[SavedWorkflow]


class WorkflowVersion(BaseModel):
    version: int
    name: str
    created_at: float


class VersionList(BaseModel):
    items: list[WorkflowVersion]


class Artifact(BaseModel):
    """A file a run produced (``std/file`` write, copy or move with a store)."""

    id: int
    name: str = Field(
        description="Its path relative to the files root", examples=["out/report.json"]
    )
    node_id: str | None = Field(
        None, description="The node that wrote it (key/node inside a loop body)"
    )
    size: int = Field(description="Bytes, as of its last write in the execution")
    created_at: float = Field(description="UNIX seconds of its first write in the execution")


class ArtifactList(BaseModel):
    items: list[Artifact]


class ExecutionRow(BaseModel):
    """An execution as stored; ``nodes`` (its node runs by node id) only on a single read."""

    model_config = ConfigDict(extra="allow")

    id: str
    workflow_id: str | None = None
    workflow_version: int | None = None
    workflow_name: str | None = None
    status: str
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    error: dict[str, Any] | None = None
    nodes: dict[str, Any] | None = Field(
        None,
        description="Each node's last attempt by node id; a retried node's row also has "
        "earlier_attempts: its failed attempts' rows, oldest first",
    )
    artifacts: list[Artifact] | None = Field(
        None, description="Files the run produced, oldest first (only on a single read)"
    )


class ExecutionPage(BaseModel):
    items: list[ExecutionRow]
    next_cursor: str | None = Field(None, description="Pass back as ?cursor= for the next page")


class CancelAnswer(BaseModel):
    execution_id: str
    status: str = Field(description="cancelling (it was running) or cancelled (it was queued)")


class Validation(BaseModel):
    """``POST /api/validate`` answers 200 whether the workflow is valid or not."""

    valid: bool
    problems: list[dict[str, Any]] = Field(
        [], description="Every problem as {path, node, key, reason}"
    )


class BlockInfo(BaseModel):
    type: str
    title: str
    description: str
    icon: str | None = None
    ports: list[str]
    config_schema: dict[str, Any]


class BlockList(BaseModel):
    items: list[BlockInfo]
    errors: dict[str, str] = Field({}, description="Block types that could not be loaded")


class Health(BaseModel):
    status: str = Field(examples=["ok"], description="ok, or unavailable (503)")
    store: dict[str, Any]
    executor: dict[str, Any] | None


def body_schema(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON request body of a route."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def responses(*pairs: tuple[int, type[BaseModel] | None, str]) -> dict[int | str, Any]:
    """``responses=`` of a route: each status with its model and description; errors JSON."""
    out: dict[int | str, Any] = {}
    for status, model, description in pairs:
        entry: dict[str, Any] = {"description": description}
        if model is not None:
            entry["model"] = model
        out[status] = entry
    return out
