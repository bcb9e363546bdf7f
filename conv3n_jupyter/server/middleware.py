"""ASGI middleware: request size limit, request log and metrics, last-resort 500.

Both are plain ASGI classes (no ``BaseHTTPMiddleware``), so server-sent events stream
through them untouched.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .errors import error_body
from .logs import log

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .metrics import Metrics

_QUIET = ("/health", "/metrics")  # polled often: logged at debug level only


async def _send_error(send: Send, status: int, code: str, message: str, details: Any) -> None:
    body = error_body(status, code, message, details)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Answers 413 when a request body is larger than ``max_body`` bytes.

    A ``Content-Length`` above the limit is refused before reading; a body without one
    (chunked) is read and counted up to the limit, then handed on whole.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_error(send, 400, "invalid_request", "bad Content-Length", None)
                    return
        too_large = f"the request body is larger than the limit of {self.max_body} bytes"
        details = {"limit": self.max_body}
        if length is not None and length > self.max_body:
            await _send_error(send, 413, "payload_too_large", too_large, details)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_error(send, 413, "payload_too_large", too_large, details)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestLog:
    """Logs one line per request and feeds the HTTP histogram; turns a crash into a JSON 500."""

    def __init__(self, app: ASGIApp, logger: logging.Logger, metrics: Metrics) -> None:
        self.app = app
        self.logger = logger
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # the answer must be JSON without a traceback
            log(
                self.logger,
                "error",
                "request_failed",
                f"{type(exc).__name__}: {exc}",
                method=scope["method"],
                path=scope["path"],
            )
            self.logger.debug("traceback", exc_info=exc)
            if not started:
                status = 500
                await _send_error(
                    send, 500, "internal", "internal error; see the service log", None
                )
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe_request(scope["method"], template, status, seconds)
            path = scope["path"]
            log(
                self.logger,
                "debug" if path in _QUIET else "info",
                "http_request",
                f"{scope['method']} {path} {status}",
                method=scope["method"],
                path=path,
                route=template,
                status=status,
                duration_ms=round(seconds * 1000, 3),
            )
