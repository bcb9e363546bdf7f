"""What the routes share: the app's services, JSON bodies, validation, queueing a run."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import WorkflowValidationError
from .errors import ApiError, JSONResp, invalid_workflow
from .logs import log

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..executors.base import Executor
    from ..model import Workflow
    from ..settings import Settings
    from ..store.batching import Coalescer
    from ..store.database import Store
    from .metrics import Metrics
    from .validation import ValidationThreads

T = TypeVar("T")


@dataclass
class Services:
    """What a running app holds: settings, store, executor, metrics, logger."""

    settings: Settings
    metrics: Metrics
    logger: logging.Logger
    store: Store | None = None
    executor: Executor | None = None
    validator: ValidationThreads | None = None
    create: Coalescer[dict[str, Any], str] | None = None  # group commit of new executions


def services(request: Request) -> Services:
    """The app's :class:`Services` (set up by the lifespan)."""
    found: Services = request.app.state.conv3n
    return found


def ready(request: Request) -> tuple[Services, Store, Executor]:
    """The services with a store and an executor, which every ``/api`` route needs."""
    svc = services(request)
    if svc.store is None or svc.executor is None:
        raise ApiError(503, "internal", "the service is starting or stopping")
    return svc, svc.store, svc.executor


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store function in a worker thread."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON; malformed JSON is a 400 naming the position."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "invalid_request", "the request needs a JSON body")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            {"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        ) from None
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "invalid_request", f"the body is not UTF-8 (byte {exc.start})", None
        ) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"malformed JSON: {exc}", None) from None
    except RecursionError:
        raise ApiError(400, "invalid_request", "JSON nested too deeply to read", None) from None


async def validated(request: Request, definition: Any, source: str = "request body") -> Workflow:
    """The parsed workflow (schema, blocks, graph, expressions compiled, never evaluated).

    Runs on the app's validation threads (see :mod:`.validation`). Raises :class:`ApiError`
    422 ``invalid_workflow`` with every problem.
    """
    from .validation import parse_safely

    validator = services(request).validator
    try:
        if validator is None:
            return await call(parse_safely, definition, source)
        return await validator.parse(definition, source)
    except WorkflowValidationError as exc:
        raise invalid_workflow(exc) from None


def check_params(wf: Workflow, params: Any) -> dict[str, Any]:
    """The run's parameters checked against the workflow's declarations (422 when wrong)."""
    from ..engine.executor import resolve_params

    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError(422, "invalid_request", "params must be a JSON object", None)
    try:
        resolve_params(wf, params)
    except WorkflowValidationError as exc:
        n = len(exc.problems)
        raise ApiError(
            422,
            "invalid_request",
            f"{n} problem{'s' if n != 1 else ''} with the parameters",
            [p.to_dict() for p in exc.problems],
        ) from None
    return dict(params)


def links(execution_id: str) -> dict[str, str]:
    """Where to read, watch and cancel an execution."""
    base = f"/api/executions/{execution_id}"
    return {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"}


async def queue_run(
    request: Request,
    *,
    workflow_name: str,
    params: dict[str, Any],
    definition: dict[str, Any] | None = None,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    retry_of: str | None = None,
    start_from: str | None = None,
    wait: bool = True,
) -> JSONResp:
    """Record a ``queued`` execution, hand it to the executor, answer 202 or its result."""
    from ..executors.base import crashed_result
    from ..store.executions import execution_row, insert_executions, read_execution

    svc, store, executor = ready(request)
    row = execution_row(
        workflow_name=workflow_name,
        status="queued",
        definition=definition,
        workflow_id=workflow_id,
        workflow_version=workflow_version,
        params=params,
        trigger={"type": "api"},
        retry_of=retry_of,
        start_from=start_from,
    )
    if svc.create is not None:
        eid = await svc.create(row)
    else:
        eid = (await call(insert_executions, store, [row]))[0]
    log(
        svc.logger,
        "info",
        "execution_queued",
        f"execution {eid} of {workflow_name!r} queued",
        execution_id=eid,
        workflow=workflow_name,
        workflow_id=workflow_id,
        retry_of=retry_of,
    )
    await executor.submit(eid)
    if not wait:
        return JSONResp(
            {"execution_id": eid, "status": "queued", "links": links(eid)}, status_code=202
        )
    try:
        result = await executor.wait(eid)
    except LookupError:  # it ended before we started waiting: the store has it
        result = crashed_result(await call(read_execution, store, eid))
    return JSONResp(result)
