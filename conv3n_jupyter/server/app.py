"""The FastAPI application of ``conv3n serve`` and its start-up.

    >>> from conv3n_jupyter.settings import load_settings
    >>> app = create_app(load_settings(overrides={"workers": 0}))
    >>> serve(load_settings())            # blocks; what `conv3n serve` runs

Start-up (the lifespan): open the store (migrating it), mark executions left ``running`` as
``crashed``, start the executor (which submits the ``queued`` ones again), and start pruning
the history when a retention setting asks for it (see :mod:`.retention`). Shut-down stops
the pruning and the executor and closes what the app opened itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from fastapi import FastAPI

from .. import __version__
from ._common import Services
from .errors import JSONResp, install_error_handlers
from .logs import LOGGER_NAME, configure_logging, log, reset_logging
from .metrics import Metrics
from .middleware import BodyLimit, RequestLog

if TYPE_CHECKING:
    from ..executors.base import Executor
    from ..settings import Settings
    from ..store.database import Store

DESCRIPTION = (
    "Run, save and watch conv3n workflows. Errors are always "
    '{"error": {"code", "message", "details"}}.'
)


def make_executor(settings: Settings, store: Store) -> Executor:
    """``workers == 0``: the in-process executor; else the supervised worker-process pool."""
    if settings.workers == 0:
        from ..executors.local import InProcessExecutor

        return InProcessExecutor(store, default_timeout=settings.execution_timeout)
    from ..executors.pool import WorkerPool

    pool: Executor = WorkerPool(
        settings.database_url,
        workers=settings.workers,
        store=store,
        execution_timeout=settings.execution_timeout,
        memory_limit_mb=settings.worker_memory_limit_mb,
    )
    return pool


def _hooks(
    svc: Services,
) -> tuple[Callable[[str, dict[str, Any]], None], Callable[[str, dict[str, Any]], None]]:
    logger, metrics = svc.logger, svc.metrics

    def on_event(execution_id: str, event: dict[str, Any]) -> None:
        metrics.on_event(execution_id, event)
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "execution_started" and not data.get("depth"):
            log(logger, "info", "execution_started", f"execution {execution_id} started",
                execution_id=execution_id)  # fmt: skip
        elif kind == "node_finished":
            status = data.get("status")
            log(
                logger,
                "warning" if status == "error" else "debug",
                "node_finished",
                f"node {event.get('node_id')} {status}",
                execution_id=execution_id,
                node_id=event.get("node_id"),
                status=status,
                duration_ms=data.get("duration_ms"),
            )

    def on_result(execution_id: str, result: dict[str, Any]) -> None:
        metrics.on_result(execution_id, result)
        status = result.get("status")
        error = result.get("error") or {}
        log(
            logger,
            "info" if status in ("success", "cancelled") else "warning",
            "execution_finished",
            f"execution {execution_id} {status}",
            execution_id=execution_id,
            workflow=result.get("workflow"),
            status=status,
            duration_ms=result.get("duration_ms"),
            node_id=error.get("node") if isinstance(error, dict) else None,
        )

    return on_event, on_result


def create_app(
    settings: Settings,
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    log_stream: IO[str] | None = None,
) -> FastAPI:
    """The API app. A ``store``/``executor`` passed in is used (and not closed) by the app.

    Without them the app opens ``settings.database_url`` and starts the executor that
    ``settings.workers`` asks for (see :func:`make_executor`) when it starts.
    """
    metrics = Metrics()
    logger = logging.Logger(LOGGER_NAME)  # the app's own: two apps in a process never mix
    svc = Services(settings=settings, metrics=metrics, logger=logger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..store.batching import Coalescer
        from ..store.database import open_store
        from ..store.executions import insert_executions
        from ..store.maintenance import mark_crashed
        from ._common import call
        from .retention import start_retention, stop_retention
        from .validation import ValidationThreads

        configure_logging(settings.log_level, settings.log_format, log_stream, logger)
        own_store = store is None
        the_store: Store = (
            store
            if store is not None
            else await call(
                open_store, settings.database_url, max_output_bytes=settings.max_output_bytes
            )
        )
        svc.store = the_store
        svc.create = Coalescer(partial(insert_executions, the_store))
        crashed = await call(mark_crashed, the_store, reason="the service stopped while it ran")
        log(
            logger,
            "warning" if crashed else "info",
            "crashed_marked",
            f"{crashed} execution(s) left running were marked crashed",
            count=crashed,
        )
        own_executor = executor is None
        running = executor if executor is not None else make_executor(settings, the_store)
        svc.executor = running
        running.on_event, running.on_result = _hooks(svc)
        await running.start()
        svc.validator = ValidationThreads()
        retention = start_retention(the_store, settings, logger)
        log(logger, "info", "service_started", "conv3n API started",
            executor=running.stats().kind)  # fmt: skip
        if running.stats().kind == "in-process":
            log(logger, "warning", "in_process_executions",
                "executions run inside the API process (--workers 0): every workflow's"
                " expressions and code run here; use it for development only")  # fmt: skip
        try:
            yield
        finally:
            await stop_retention(retention)
            if own_executor:
                await running.close()
            running.on_event = running.on_result = None
            if own_store:
                the_store.close()
            log(logger, "info", "service_stopped", "conv3n API stopped")
            svc.store = svc.executor = svc.create = None
            if svc.validator is not None:
                svc.validator.close()
                svc.validator = None
            reset_logging(logger)

    app = FastAPI(
        title="conv3n API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        default_response_class=JSONResp,
    )
    app.state.conv3n = svc
    install_error_handlers(app)
    from . import (
        routes_artifacts,
        routes_executions,
        routes_run,
        routes_system,
        routes_workflows,
    )

    for module in (
        routes_run,
        routes_workflows,
        routes_executions,
        routes_artifacts,
        routes_system,
    ):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_body=settings.api_max_body)
    app.add_middleware(RequestLog, logger=logger, metrics=metrics)
    return app


def serve(settings: Settings, *, announce: Callable[[str], Any] = print) -> None:
    """Serve the API with uvicorn until interrupted; ``announce`` gets the URL once bound."""
    import uvicorn

    from .._paths import ROOT_ENV

    if settings.files_root is not None:
        # The engine (here and in the worker processes) reads the files root from here.
        os.environ[ROOT_ENV] = str(settings.files_root)
    app = create_app(settings)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in str(host) else host
                announce(f"conv3n API listening on http://{shown}:{port} (docs: /docs)")

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # Server.run picks uvloop and httptools when they are installed (the server extra has them).
    _Server(config).run()
