"""``/health``, ``/metrics``, ``/api/blocks`` and the ``/docs`` page."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from ._common import call, services
from .errors import JSONResp
from .models import BlockList, Health, responses

router = APIRouter(tags=["service"])

STORE_PING_SECONDS = 2.0


def _ping(store: Any) -> None:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


@router.get(
    "/health",
    summary="Liveness, store reachability and executor load",
    responses=responses(
        (200, Health, "The store answers"), (503, Health, "The store does not answer")
    ),
)
async def health(request: Request) -> JSONResp:
    svc = services(request)
    store: dict[str, Any] = {"ok": False, "dialect": None}
    if svc.store is not None:
        store["dialect"] = svc.store.dialect
        try:
            await asyncio.wait_for(call(_ping, svc.store), STORE_PING_SECONDS)
            store["ok"] = True
        except asyncio.TimeoutError:
            store["error"] = f"no answer within {STORE_PING_SECONDS:g} s"
        except Exception as exc:  # any driver error means unreachable; its class says which
            store["error"] = type(exc).__name__
    executor = svc.executor.stats().to_dict() if svc.executor is not None else None
    fine = store["ok"] and executor is not None and executor["alive"]
    body = {"status": "ok" if fine else "unavailable", "store": store, "executor": executor}
    return JSONResp(body, status_code=200 if fine else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    svc = services(request)
    data, content_type = svc.metrics.render(svc.executor)
    return Response(data, media_type=content_type)


@router.get(
    "/api/blocks",
    summary="The known block types with their config schemas and ports",
    responses=responses((200, BlockList, "Built-in and plugin blocks")),
    tags=["blocks"],
)
async def blocks() -> JSONResp:
    from ..schema import load_blocks

    loaded, errors = await call(load_blocks)
    items = [
        {
            "type": b.type,
            "title": b.title,
            "description": b.description,
            "icon": b.icon,
            "ports": list(b.ports),
            "config_schema": b.config_schema,
        }
        for b in loaded.values()
    ]
    return JSONResp({"items": items, "errors": errors})


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    from .docs import render_docs

    page = getattr(request.app.state, "docs_page", None)
    if page is None:
        page = request.app.state.docs_page = render_docs(request.app.openapi())
    return HTMLResponse(page)
