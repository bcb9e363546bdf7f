"""Every error answer has one shape: ``{"error": {"code", "message", "details"}}``.

Codes: ``not_found`` (404), ``invalid_workflow`` (422), ``invalid_request`` (400, 405, 422),
``conflict`` (409), ``payload_too_large`` (413), ``internal`` (500, 503). Errors of the
package map in one place (:func:`install_error_handlers`): ``NotFound`` → 404,
``AlreadyExists`` → 409, ``WorkflowValidationError`` → 422 with every problem,
``StoreError`` → 500 without the database's message (that goes to the log).

    >>> raise ApiError(409, "conflict", "execution 'e1' succeeded; nothing to retry")
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from ..errors import AlreadyExists, NotFound, StoreError, WorkflowValidationError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, human ``message``, ``details``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity are not JSON: their text instead
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class JSONResp(JSONResponse):
    """JSON that never fails: values JSON does not know become text, NaN becomes ``"nan"``."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, default=str)
        return text.encode("utf-8")


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResp:
    """The JSON error answer."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResp(body, status_code=status, headers=headers)


def error_body(status: int, code: str, message: str, details: Any = None) -> bytes:
    """The bytes of an error answer, for middleware that answers before the app."""
    return bytes(JSONResp({"error": {"code": code, "message": message, "details": details}}).body)


def invalid_workflow(exc: WorkflowValidationError) -> ApiError:
    """422 listing every problem: ``details`` is ``[{"path", "node", "key", "reason"}, ...]``."""
    n = len(exc.problems)
    return ApiError(
        422,
        "invalid_workflow",
        f"{n} problem{'s' if n != 1 else ''} in the workflow",
        [p.to_dict() for p in exc.problems],
    )


def _code_for(status: int) -> str:
    return {404: "not_found", 409: "conflict", 413: "payload_too_large"}.get(
        status, "internal" if status >= 500 else "invalid_request"
    )


def _request_validation(request: Request, exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            loc = list(err.get("loc") or ())
            pos = loc[1] if len(loc) > 1 else None
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            return error_response(
                400,
                "invalid_request",
                f"malformed JSON at position {pos}: {reason}",
                {"position": pos},
            )
    details = [
        {
            "location": ".".join(str(p) for p in err.get("loc") or ()),
            "reason": str(err.get("msg")),
            "type": err.get("type"),
        }
        for err in errors
    ]
    return error_response(422, "invalid_request", "the request is invalid", details)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error raised by a route (and FastAPI's own) to the one JSON shape."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 404:
            message = f"no route {request.method} {request.url.path}"
        elif status == 405:
            allowed = headers.get("allow") or headers.get("Allow") or ""
            message = f"method {request.method} is not allowed on {request.url.path}" + (
                f"; allowed: {allowed}" if allowed else ""
            )
        else:
            message = str(exc.detail)
        return error_response(status, _code_for(status), message, None, headers or None)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _request_validation(request, exc)

    async def package_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotFound):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, AlreadyExists):
            return error_response(409, "conflict", str(exc))
        if isinstance(exc, WorkflowValidationError):
            err = invalid_workflow(exc)
            return error_response(err.status, err.code, err.message, err.details)
        raise exc  # pragma: no cover - registered only for the classes above

    async def store_error(request: Request, exc: Exception) -> Response:
        from ._common import services
        from .logs import log

        log(
            services(request).logger,
            "error",
            "store_error",
            str(exc),
            method=request.method,
            path=request.url.path,
        )
        return error_response(500, "internal", "the store failed; see the service log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for cls in (NotFound, AlreadyExists, WorkflowValidationError):
        app.add_exception_handler(cls, package_error)
    app.add_exception_handler(StoreError, store_error)
