"""Saved workflows: create, read, list, new versions, restore, delete, run by id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request, Response

from ._common import call, json_body, ready, validated
from .errors import ApiError, JSONResp
from .models import (
    ErrorResponse,
    RunSavedRequest,
    SavedWorkflow,
    VersionList,
    Workflow,
    WorkflowList,
    body_schema,
    responses,
)
from .routes_run import RUN_RESPONSES, WAIT, run_saved

router = APIRouter(tags=["workflows"])

WID = Path(description="The workflow's id", min_length=1, max_length=200)
VERSION = Path(description="A version number", ge=1, le=2**31 - 1)
NOT_FOUND = (404, ErrorResponse, "No such workflow or version")
INVALID = (422, ErrorResponse, "Invalid workflow: every problem in error.details")


async def _definition(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    await validated(request, body)
    assert isinstance(body, dict)  # validated: a workflow is an object
    return body


@router.get(
    "/api/workflows",
    summary="List saved workflows (without definitions)",
    responses=responses((200, WorkflowList, "Most recently updated first")),
)
async def list_workflows(request: Request) -> JSONResp:
    from ..store.workflows import read_workflows

    _, store, _ = ready(request)
    return JSONResp({"items": await call(read_workflows, store)})


@router.post(
    "/api/workflows",
    summary="Save a new workflow as version 1",
    description="The id is the body's `id`, else a new random one. 409 if it exists.",
    status_code=201,
    responses=responses(
        (201, SavedWorkflow, "Saved"),
        (400, ErrorResponse, "Malformed JSON"),
        (409, ErrorResponse, "A workflow with that id exists"),
        INVALID,
    ),
    openapi_extra=body_schema(Workflow),
)
async def create_workflow(request: Request) -> JSONResp:
    from ..store.workflows import create_workflow

    _, store, _ = ready(request)
    definition = await _definition(request)
    wid = definition.get("id")
    if wid is not None and (not wid or len(wid) > 200):
        raise ApiError(422, "invalid_request", "id must be 1 to 200 characters")
    saved = await call(create_workflow, store, definition)
    return JSONResp(saved, status_code=201)


@router.get(
    "/api/workflows/{workflow_id}",
    summary="Read a workflow with its current definition",
    responses=responses((200, SavedWorkflow, "The workflow"), NOT_FOUND),
)
async def read_workflow(request: Request, workflow_id: str = WID) -> JSONResp:
    from ..store.workflows import read_workflow

    _, store, _ = ready(request)
    return JSONResp(await call(read_workflow, store, workflow_id))


@router.put(
    "/api/workflows/{workflow_id}",
    summary="Save a new version of a workflow",
    responses=responses(
        (200, SavedWorkflow, "The new current version"),
        (400, ErrorResponse, "Malformed JSON"),
        NOT_FOUND,
        INVALID,
    ),
    openapi_extra=body_schema(Workflow),
)
async def update_workflow(request: Request, workflow_id: str = WID) -> JSONResp:
    from ..store.workflows import update_workflow

    _, store, _ = ready(request)
    definition = await _definition(request)
    if definition.get("id") not in (None, workflow_id):
        raise ApiError(
            422,
            "invalid_request",
            f"the body's id {definition['id']!r} differs from the URL's {workflow_id!r}",
        )
    return JSONResp(await call(update_workflow, store, workflow_id, definition))


@router.delete(
    "/api/workflows/{workflow_id}",
    summary="Delete a workflow and its versions (its execution history stays)",
    status_code=204,
    response_class=Response,
    responses=responses((204, None, "Deleted"), NOT_FOUND),
)
async def delete_workflow(request: Request, workflow_id: str = WID) -> Response:
    from ..store.workflows import delete_workflow

    _, store, _ = ready(request)
    await call(delete_workflow, store, workflow_id)
    return Response(status_code=204)


@router.get(
    "/api/workflows/{workflow_id}/versions",
    summary="List a workflow's versions, oldest first",
    responses=responses((200, VersionList, "The versions"), NOT_FOUND),
)
async def list_versions(request: Request, workflow_id: str = WID) -> JSONResp:
    from ..store.workflows import read_workflow_versions

    _, store, _ = ready(request)
    return JSONResp({"items": await call(read_workflow_versions, store, workflow_id)})


@router.get(
    "/api/workflows/{workflow_id}/versions/{version}",
    summary="Read one version of a workflow",
    responses=responses((200, SavedWorkflow, "That version's definition"), NOT_FOUND),
)
async def read_version(
    request: Request, workflow_id: str = WID, version: int = VERSION
) -> JSONResp:
    from ..store.workflows import read_workflow

    _, store, _ = ready(request)
    return JSONResp(await call(read_workflow, store, workflow_id, version=version))


@router.post(
    "/api/workflows/{workflow_id}/versions/{version}/restore",
    summary="Make an old version current again (saved as a new version)",
    responses=responses((200, SavedWorkflow, "The new current version"), NOT_FOUND),
)
async def restore_version(
    request: Request, workflow_id: str = WID, version: int = VERSION
) -> JSONResp:
    from ..store.workflows import restore_workflow_version

    _, store, _ = ready(request)
    return JSONResp(await call(restore_workflow_version, store, workflow_id, version))


@router.post(
    "/api/workflows/{workflow_id}/run",
    summary="Run a saved workflow",
    description="Same answers as POST /api/run. The body (optional) gives params and version.",
    responses=RUN_RESPONSES,
    openapi_extra=body_schema(RunSavedRequest, required=False),
)
async def run_workflow(request: Request, workflow_id: str = WID, wait: bool = WAIT) -> JSONResp:
    body: Any = {}
    if (await request.body()).strip():
        body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    extra = sorted(set(body) - {"params", "version"})
    if extra:
        raise ApiError(422, "invalid_request", f"unknown key(s) {extra}; expected params, version")
    version = body.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise ApiError(422, "invalid_request", "version must be a whole number of at least 1")
    return await run_saved(request, workflow_id, version, body.get("params"), wait)
