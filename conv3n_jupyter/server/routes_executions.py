"""Execution history: list, read, retry from the failed node, cancel, live events (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import StreamingResponse

from ._common import call, links, queue_run, ready
from .errors import ApiError, JSONResp
from .models import CancelAnswer, ErrorResponse, ExecutionPage, ExecutionRow, responses
from .routes_run import RUN_RESPONSES, WAIT

router = APIRouter(tags=["executions"])

EID = Path(description="The execution's id", min_length=1, max_length=200)
NOT_FOUND = (404, ErrorResponse, "No such execution")
TERMINAL = frozenset({"success", "error", "cancelled", "crashed"})
RETRYABLE = frozenset({"error", "cancelled", "crashed"})
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.5


def parse_since(text: str | None) -> float | None:
    """``since`` as UNIX seconds: a number, or ISO 8601 (UTC when it has no offset)."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ApiError(422, "invalid_request", f"since: not a time: {text!r}")
        return value
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422,
            "invalid_request",
            f"since: expected ISO 8601 (2026-01-31T12:00:00Z) or UNIX seconds, got {text!r}",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@router.get(
    "/api/executions",
    summary="List executions, newest first, a page at a time",
    responses=responses(
        (200, ExecutionPage, "One page; next_cursor is null on the last"),
        (400, ErrorResponse, "Bad cursor"),
        (422, ErrorResponse, "Bad since or limit"),
    ),
)
async def list_executions(
    request: Request,
    workflow_id: str | None = Query(None, description="Only this saved workflow's"),
    status: str | None = Query(None, description="queued, running, success, error, ..."),
    since: str | None = Query(None, description="ISO 8601 or UNIX seconds: started at or after"),
    limit: int = Query(50, ge=1, le=500, description="Page size"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> JSONResp:
    from ..errors import InvalidCursor
    from ..store.executions import read_executions

    _, store, _ = ready(request)
    since_ts = parse_since(since)
    try:
        page = await call(
            read_executions,
            store,
            workflow_id=workflow_id,
            status=status,
            since=since_ts,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor:
        raise ApiError(
            400, "invalid_request", "invalid cursor: pass back a next_cursor unchanged"
        ) from None
    return JSONResp({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/api/executions/{execution_id}",
    summary="Read an execution with its node runs and artifacts",
    responses=responses((200, ExecutionRow, "The execution"), NOT_FOUND),
)
async def read_execution(request: Request, execution_id: str = EID) -> JSONResp:
    from ..store.executions import read_execution
    from ..store.maintenance import list_artifacts
    from .routes_artifacts import public

    _, store, _ = ready(request)
    row = await call(read_execution, store, execution_id)
    row["artifacts"] = [public(a) for a in await call(list_artifacts, store, execution_id)]
    return JSONResp(row)


def retry_start(wf: Any, row: dict[str, Any]) -> str | None:
    """The node a retry starts from: the failed one, else the one after the last finished.

    ``None`` (run everything again) when nothing points at one node.
    """
    runs = row.get("nodes") or {}
    failed = [n for n, r in runs.items() if r.get("status") in ("error", "cancelled", "running")]
    if not failed:
        last = (row.get("error") or {}).get("node") or row.get("last_node")
        if last in wf.nodes:
            failed = [n for n in wf.nodes if last in wf.upstream(n) and n not in runs]
            failed = [n for n in failed if not (wf.upstream(n) & set(failed))]
    failed = [n for n in failed if n in wf.nodes and n not in wf.standby]
    roots = [n for n in failed if not (wf.upstream(n) & set(failed))]
    if len(roots) != 1:
        return None
    target = roots[0]
    ok = {n for n, r in runs.items() if r.get("status") == "success"}
    return target if wf.upstream(target) <= ok else None


@router.post(
    "/api/executions/{execution_id}/retry",
    summary="Run a failed, crashed or cancelled execution again from its failed node",
    description="Upstream nodes' results are reused; same definition and params. "
    "409 when the execution succeeded or has not ended.",
    responses={
        **RUN_RESPONSES,
        404: {"description": "No such execution", "model": ErrorResponse},
        409: {"description": "Nothing to retry", "model": ErrorResponse},
    },
)
async def retry_execution(request: Request, execution_id: str = EID, wait: bool = WAIT) -> JSONResp:
    from ..store.executions import read_execution
    from ._common import validated

    _, store, _ = ready(request)
    row = await call(read_execution, store, execution_id)
    if row["status"] not in RETRYABLE:
        raise ApiError(
            409,
            "conflict",
            f"execution {execution_id!r} is {row['status']}; only error, crashed or cancelled"
            " executions can be retried",
        )
    from ..store.executions import read_definition

    definition = await call(read_definition, store, execution_id)
    if definition is None:
        raise ApiError(409, "conflict", f"execution {execution_id!r} has no workflow to rerun")
    wf = await validated(request, definition, f"the workflow of execution {execution_id}")
    if row["workflow_id"] is not None:
        definition = None  # the saved version is named by workflow_id and workflow_version
    return await queue_run(
        request,
        workflow_name=wf.name,
        params=row.get("params") or {},
        definition=definition,
        workflow_id=row["workflow_id"],
        workflow_version=row["workflow_version"],
        retry_of=execution_id,
        start_from=retry_start(wf, row),
        wait=wait,
    )


@router.post(
    "/api/executions/{execution_id}/cancel",
    summary="Cancel a queued or running execution",
    responses=responses(
        (200, CancelAnswer, "It was queued and is now cancelled"),
        (202, CancelAnswer, "It is running and was asked to stop"),
        NOT_FOUND,
        (409, ErrorResponse, "It has already ended"),
    ),
)
async def cancel_execution(request: Request, execution_id: str = EID) -> JSONResp:
    from ..store.executions import cancel_queued, read_execution

    _, store, executor = ready(request)
    row = await call(read_execution, store, execution_id)
    if row["status"] in TERMINAL:
        raise ApiError(
            409, "conflict", f"execution {execution_id!r} already ended: {row['status']}"
        )
    if row["status"] == "queued" and await call(cancel_queued, store, execution_id):
        await executor.cancel(execution_id, "cancelled by request")  # frees its slot
        return JSONResp({"execution_id": execution_id, "status": "cancelled"})
    if await executor.cancel(execution_id, "cancelled by request"):
        return JSONResp({"execution_id": execution_id, "status": "cancelling"}, status_code=202)
    raise ApiError(
        409, "conflict", f"execution {execution_id!r} is not running in this service any more"
    )


def _sse(event: str, data: Any) -> bytes:
    text = json.dumps(data, default=str, ensure_ascii=False).replace("\n", "\\n")
    return f"event: {event}\ndata: {text}\n\n".encode()


async def _stream(request: Request, execution_id: str) -> AsyncIterator[bytes]:
    from ..executors.base import crashed_result
    from ..store.executions import read_execution

    _, store, executor = ready(request)
    finished = False
    source = executor.events(execution_id).__aiter__()
    pending: asyncio.Task[dict[str, Any]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield b": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            top = not (event.get("data") or {}).get("depth")
            if event.get("type") == "execution_finished" and top:
                finished = True
            yield _sse(str(event.get("type")), event)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()  # ends the watch: the executor forgets this watcher
        else:
            closing = getattr(source, "aclose", None)
            if closing is not None:
                await closing()
    if finished:
        return
    # Not run here (any more): follow the store until it ends, then send its final state.
    waited = 0.0
    while True:
        row = await call(read_execution, store, execution_id)
        if row["status"] in TERMINAL:
            break
        await asyncio.sleep(POLL_SECONDS)
        waited += POLL_SECONDS
        if waited >= KEEPALIVE_SECONDS:
            waited = 0.0
            yield b": keep-alive\n\n"
    final = crashed_result(row)
    yield _sse(
        "execution_finished",
        {
            "type": "execution_finished",
            "execution_id": execution_id,
            "node_id": None,
            "ts": row.get("finished_at"),
            "data": {**final, "links": links(execution_id)},
        },
    )


@router.get(
    "/api/executions/{execution_id}/events",
    summary="Watch an execution live (server-sent events)",
    description="Each engine event as `event: TYPE` + `data: JSON` (node_started, "
    "node_finished, ...), ending with execution_finished. An execution that has ended sends "
    "its final state as one execution_finished event. A comment line every 15 s keeps the "
    "connection open.",
    responses={
        200: {"description": "text/event-stream", "content": {"text/event-stream": {}}},
        404: {"description": "No such execution", "model": ErrorResponse},
    },
)
async def execution_events(request: Request, execution_id: str = EID) -> StreamingResponse:
    from ..store.executions import read_execution

    _, store, _ = ready(request)
    await call(read_execution, store, execution_id)  # 404 before the stream starts
    return StreamingResponse(
        _stream(request, execution_id),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
