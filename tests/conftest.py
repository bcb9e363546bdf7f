"""Shared fixtures: a real HTTP test server on 127.0.0.1 (Starlette on uvicorn) and a client.

Routes of the ``http_server`` app (every route answers any method unless noted):

* ``/status/{code}``: that status, JSON ``{"status": code}`` (no body for 1xx/204/304)
* ``/echo``: JSON ``{method, path, query, headers, body, form}``; ``body`` is parsed JSON for a
  JSON request, else text; ``form`` the urlencoded fields (else ``null``); ``query``
  values are lists only when a name repeats
* ``/json``: a fixed document (:data:`JSON_DOC`); ``/text``: :data:`TEXT`; ``/bytes``: :data:`BYTES`
* ``/broken-json``: ``application/json`` that is not JSON
* ``/headers/repeated``: two ``x-multi`` headers (``a``, ``b``)
* ``/slow?ms=N``: sleeps N ms then answers ``{"slept_ms": N}``; counts in-flight requests
* ``/stats``: ``{"current", "max", "requests"}`` of ``/slow``; ``/stats/reset`` zeroes them
* ``/flaky/{key}?fail=N``: 503 for the first N calls per key, then 200 ``{"attempts": n}``;
  ``DELETE /flaky/{key}`` forgets the key
* ``/redirect?to=/json&status=302``: a redirect; ``/redirect?n=3&to=...`` chains 3 hops
* ``/large?kb=N``: N KiB of ``x`` with a Content-Length; ``&chunked=1`` streams it without one
* ``/auth``: ``{"authorization": <the Authorization header or null>}``
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
JSON_DOC: dict[str, Any] = {
    "name": "catalog",
    "count": 3,
    "items": [
        {"id": 1, "name": "apple", "price": 1.5, "tags": ["fruit"]},
        {"id": 2, "name": "bread", "price": 3.0, "tags": ["bakery"]},
        {"id": 3, "name": "cheese", "price": 7.25, "tags": ["dairy", "vip"]},
    ],
}
TEXT = "hello, world\n"
BYTES = bytes(range(256))


class _SlowStats:
    def __init__(self) -> None:
        self.current = 0
        self.max = 0
        self.requests = 0

    def as_dict(self) -> dict[str, int]:
        return {"current": self.current, "max": self.max, "requests": self.requests}


def _build_app() -> Starlette:
    stats = _SlowStats()
    flaky: dict[str, int] = {}

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        if code < 200 or code in (204, 304):
            return Response(status_code=code)
        return JSONResponse({"status": code}, status_code=code)

    async def echo(request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        body: Any = raw.decode("utf-8", "replace")
        form: dict[str, Any] | None = None
        if "json" in content_type and raw:
            body = json.loads(raw)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            # parse_qsl rather than request.form(): no python-multipart needed for tests.
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        query: dict[str, Any] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            query[key] = values if len(values) > 1 else values[0]
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": query,
                "headers": dict(request.headers),
                "body": body,
                "form": form,
            }
        )

    async def json_doc(request: Request) -> Response:
        return JSONResponse(JSON_DOC)

    async def text(request: Request) -> Response:
        return PlainTextResponse(TEXT)

    async def raw_bytes(request: Request) -> Response:
        return Response(BYTES, media_type="application/octet-stream")

    async def broken_json(request: Request) -> Response:
        return Response(b"{not json", media_type="application/json")

    async def repeated_headers(request: Request) -> Response:
        response = JSONResponse({})
        response.headers.append("x-multi", "a")
        response.headers.append("x-multi", "b")
        return response

    async def slow(request: Request) -> Response:
        ms = float(request.query_params.get("ms", "100"))
        stats.requests += 1
        stats.current += 1
        stats.max = max(stats.max, stats.current)
        try:
            await asyncio.sleep(ms / 1000)
        finally:
            stats.current -= 1
        return JSONResponse({"slept_ms": ms})

    async def read_stats(request: Request) -> Response:
        return JSONResponse(stats.as_dict())

    async def reset_stats(request: Request) -> Response:
        stats.max = stats.current
        stats.requests = 0
        return JSONResponse(stats.as_dict())

    async def flaky_route(request: Request) -> Response:
        key = request.path_params["key"]
        if request.method == "DELETE":
            flaky.pop(key, None)
            return JSONResponse({"reset": key})
        flaky[key] = flaky.get(key, 0) + 1
        fail = int(request.query_params.get("fail", "1"))
        if flaky[key] <= fail:
            return JSONResponse({"attempts": flaky[key]}, status_code=503)
        return JSONResponse({"attempts": flaky[key]})

    async def redirect(request: Request) -> Response:
        target = request.query_params.get("to", "/json")
        code = int(request.query_params.get("status", "302"))
        hops = int(request.query_params.get("n", "1"))
        if hops > 1:
            target = "/redirect?" + urlencode({"to": target, "status": code, "n": hops - 1})
        return Response(status_code=code, headers={"location": target})

    async def large(request: Request) -> Response:
        size = int(request.query_params.get("kb", "1")) * 1024
        if request.query_params.get("chunked"):

            async def chunks() -> AsyncIterator[bytes]:
                left = size
                while left > 0:
                    n = min(left, 64 * 1024)
                    left -= n
                    yield b"x" * n

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        return Response(b"x" * size, media_type="application/octet-stream")

    async def auth(request: Request) -> Response:
        return JSONResponse({"authorization": request.headers.get("authorization")})

    async def cookie(request: Request) -> Response:
        response = JSONResponse({"received": request.headers.get("cookie")})
        response.set_cookie("session", "secret-session")
        return response

    routes = [
        Route("/status/{code:int}", status, methods=ALL_METHODS),
        Route("/echo", echo, methods=ALL_METHODS),
        Route("/echo/{rest:path}", echo, methods=ALL_METHODS),
        Route("/json", json_doc, methods=ALL_METHODS),
        Route("/text", text, methods=ALL_METHODS),
        Route("/bytes", raw_bytes, methods=ALL_METHODS),
        Route("/broken-json", broken_json, methods=ALL_METHODS),
        Route("/headers/repeated", repeated_headers, methods=ALL_METHODS),
        Route("/slow", slow, methods=ALL_METHODS),
        Route("/stats", read_stats, methods=ALL_METHODS),
        Route("/stats/reset", reset_stats, methods=ALL_METHODS),
        Route("/flaky/{key}", flaky_route, methods=ALL_METHODS),
        Route("/redirect", redirect, methods=ALL_METHODS),
        Route("/large", large, methods=ALL_METHODS),
        Route("/auth", auth, methods=ALL_METHODS),
        Route("/cookie", cookie, methods=ALL_METHODS),
    ]
    return Starlette(routes=routes)


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        # The server runs in a helper thread; signals belong to pytest's main thread.
        pass


def free_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1 (not listening yet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_in_thread(
    app: Any, sock: socket.socket, *, lifespan: str, grace: float, what: str
) -> Callable[[], None]:
    """Run ``app`` on uvicorn in a daemon thread on ``sock``; returns ``stop()``."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        ws="none",
        http="h11",
        timeout_graceful_shutdown=grace,
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

    return stop


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of the real test HTTP server; see the module doc."""
    sock = free_socket()
    port = sock.getsockname()[1]
    stop = serve_in_thread(
        _build_app(), sock, lifespan="off", grace=0.5, what="the test HTTP server"
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A pooled ``httpx.AsyncClient``, closed after the test (stands in for the engine's)."""
    async with httpx.AsyncClient() as client:
        yield client
