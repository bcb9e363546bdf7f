"""``POST /api/run`` and ``POST /api/validate``.

The API process parses and checks a workflow (structure, block configs against their
schemas, graph, expression syntax) but never evaluates an expression or runs code: the
executor does, in a worker process unless ``--workers 0``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from ._common import call, check_params, json_body, queue_run, ready, validated
from .errors import ApiError, JSONResp
from .models import (
    ErrorResponse,
    ExecutionResult,
    Queued,
    RunRequest,
    Validation,
    Workflow,
    body_schema,
    responses,
)

router = APIRouter(tags=["run"])

WAIT = Query(
    True,
    description="true: answer when the execution ends, with its result; "
    "false: answer 202 at once with its id",
)
RUN_RESPONSES = responses(
    (200, ExecutionResult, "The execution ended (its status may be error or crashed)"),
    (202, Queued, "Queued (?wait=false)"),
    (400, ErrorResponse, "Malformed JSON"),
    (404, ErrorResponse, "No such saved workflow or version"),
    (413, ErrorResponse, "Body too large"),
    (422, ErrorResponse, "Invalid workflow (every problem in error.details) or parameters"),
)


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(422, "invalid_request", "version must be a whole number of at least 1")
    return value


async def run_saved(
    request: Request, workflow_id: str, version: int | None, params: Any, wait: bool
) -> JSONResp:
    """Run a saved workflow (current version unless ``version``)."""
    from ..store.workflows import read_workflow

    _, store, _ = ready(request)
    saved = await call(read_workflow, store, workflow_id, version=version)
    wf = await validated(
        request, saved["definition"], f"workflow {workflow_id!r} v{saved['version']}"
    )
    checked = check_params(wf, params)
    return await queue_run(
        request,
        workflow_name=wf.name,
        params=checked,
        workflow_id=workflow_id,
        workflow_version=saved["version"],
        wait=wait,
    )


@router.post(
    "/api/run",
    summary="Run a workflow",
    description='The body is a workflow, `{"workflow": {...}, "params": {...}}`, or '
    '`{"workflow_id": "...", "params": {...}, "version": 2}`. A workflow that fails still '
    'answers 200, with `"status": "error"`.',
    responses=RUN_RESPONSES,
    openapi_extra=body_schema(RunRequest),
)
async def run(request: Request, wait: bool = WAIT) -> JSONResp:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    if "workflow_id" in body:
        wid = body["workflow_id"]
        if not isinstance(wid, str) or not wid:
            raise ApiError(422, "invalid_request", "workflow_id must be a non-empty string")
        return await run_saved(
            request, wid, _version(body.get("version")), body.get("params"), wait
        )
    if "workflow" in body:
        definition, params = body["workflow"], body.get("params")
        extra = sorted(set(body) - {"workflow", "params"})
        if extra:
            raise ApiError(
                422, "invalid_request", f"unknown key(s) {extra}; expected workflow and params"
            )
    else:
        definition, params = body, None
    wf = await validated(request, definition)
    checked = check_params(wf, params)
    return await queue_run(
        request, workflow_name=wf.name, params=checked, definition=definition, wait=wait
    )


@router.post(
    "/api/validate",
    summary="Check a workflow without running it",
    description="Always 200 for a JSON object: `valid` tells, `problems` lists every problem.",
    responses=responses(
        (200, Validation, "The verdict"),
        (400, ErrorResponse, "Malformed JSON"),
    ),
    openapi_extra=body_schema(Workflow),
)
async def validate(request: Request) -> JSONResp:
    body = await json_body(request)
    try:
        await validated(request, body)
    except ApiError as exc:
        if exc.code != "invalid_workflow":
            raise
        return JSONResp({"valid": False, "problems": exc.details})
    return JSONResp({"valid": True, "problems": []})
