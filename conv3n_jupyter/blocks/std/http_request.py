"""``std/http_request``: one HTTP request over the process's shared, pooled client.

Redirects are followed hop by hop here (not inside httpx) so that the private-address guard
checks every hop, not just the first URL.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..._durations import parse_duration
from ...errors import BlockError, HTTPBlockError
from ...types import json_type
from ..base import Block, NodeContext, Output

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BODY = 50 * 1024 * 1024
MAX_REDIRECTS = 20
_SENSITIVE_QUERY = re.compile(
    r"token|key|secret|pass|auth|sig|credential|session|code|jwt", re.IGNORECASE
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

_SCALAR = {"type": ["string", "number", "boolean"]}
_EXPR = "or an expression giving one"


class HttpRequest(Block):
    type = "std/http_request"
    title = "HTTP request"
    description = "Sends an HTTP request; the port tells success, client error or server error."
    icon = "⇄"
    ports = ("success", "client_error", "server_error")
    config_schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "description": "http:// or https:// URL"},
            "method": {
                "anyOf": [
                    {"type": "string", "enum": list(METHODS)},
                    {"type": "string", "pattern": r"\{\{", "description": "an expression"},
                ],
                "default": "GET",
                "description": "HTTP method",
            },
            "headers": {
                "type": ["object", "string"],
                "additionalProperties": _SCALAR,
                "description": f"request headers (name → value), {_EXPR}",
            },
            "query": {
                "type": ["object", "string"],
                "additionalProperties": {
                    "type": ["string", "number", "boolean", "null", "array"],
                    "items": _SCALAR,
                },
                "description": f"query parameters added to the URL's own, {_EXPR}; "
                "a list repeats the name",
            },
            "body": {
                "description": "request body: an object or list is sent as JSON, a string as is",
            },
            "form": {
                "type": ["object", "string"],
                "additionalProperties": _SCALAR,
                "description": f"fields sent as application/x-www-form-urlencoded, {_EXPR}",
            },
            "timeout": {
                "type": ["number", "string"],
                "default": "30s",
                "description": "whole-request time limit: '30s', '1m', or milliseconds",
            },
            "follow_redirects": {
                "type": ["boolean", "string"],
                "default": True,
                "description": "follow 3xx redirects (up to 20 hops)",
            },
            "response": {
                "type": "string",
                "enum": ["auto", "json", "text", "bytes"],
                "default": "auto",
                "description": "how to read the body: auto (JSON when the server says so, "
                "else text), json, text, or bytes (base64 text)",
            },
            "auth": {
                "description": "credentials, usually from $secrets",
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "bearer"},
                            "token": {"type": "string", "minLength": 1},
                        },
                        "required": ["type", "token"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "basic"},
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                        },
                        "required": ["type", "username", "password"],
                        "additionalProperties": False,
                    },
                ],
            },
            "fail_on_status": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"type": "integer", "minimum": 100, "maximum": 599},
                        {"type": "string", "enum": ["4xx", "5xx"]},
                    ]
                },
                "default": [],
                "description": "statuses that fail the node instead of leaving on a port, e.g. "
                '[429, "5xx"]; 429 and 5xx failures are retryable, so the node\'s retry '
                "policy applies to them",
            },
            "allow_private": {
                "type": ["boolean", "string"],
                "description": "allow hosts on loopback/private/link-local addresses; default from "
                "CONV3N_HTTP_ALLOW_PRIVATE (true unless the server sets it)",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    async def run(self, ctx: NodeContext) -> Output:
        cfg = ctx.config
        url = cfg.get("url")
        if not isinstance(url, str) or not url.strip():
            raise _config_error("url", f"must be a non-empty string, got {json_type(url)}")
        method = cfg.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _config_error("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
        method = method.upper()
        mode = cfg.get("response", "auto")
        if mode not in ("auto", "json", "text", "bytes"):
            raise _config_error("response", f"must be auto, json, text or bytes, got {mode!r}")
        timeout = _timeout(cfg.get("timeout", "30s"), ctx.timeout)
        follow = _flag("follow_redirects", cfg.get("follow_redirects", True))
        allow_private = (
            _flag("allow_private", cfg["allow_private"])
            if cfg.get("allow_private") is not None
            else _env_allow_private()
        )
        max_body = _max_body()

        client = ctx.http()
        try:
            target = httpx.URL(url.strip())
            query = _query(cfg.get("query"))
            if query:
                # Merged here: httpx's `params=` replaces the URL's own query instead.
                target = target.copy_merge_params(query)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise _config_error("url", f"{_redact(url)} is not a valid URL: {exc}") from exc
        if target.scheme not in ("http", "https"):
            raise _config_error(
                "url", f"only http and https URLs are allowed, got {_redact(target)!r}"
            )
        if not target.host:
            raise _config_error("url", f"{_redact(target)!r} has no host")
        try:
            request = client.build_request(
                method,
                target,
                headers=_headers(cfg.get("headers"), cfg.get("auth")),
                timeout=httpx.Timeout(timeout),
                **_content(cfg),
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise _config_error("url", f"cannot build a request for {_redact(url)}: {exc}") from exc

        started = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: wait_for runs the exchange in a Task of its own,
            # which costs two extra loop turns per request.
            async with asyncio.timeout(timeout):
                status, headers, raw = await _exchange(
                    client, request, follow, allow_private, max_body
                )
        except TimeoutError as exc:
            raise HTTPBlockError(
                f"{method} {_redact(request.url)} failed: timed out after {timeout:g}s",
                block_type=self.type,
                details={"reason": "timeout"},
            ) from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)

        data = {
            "status": status,
            "headers": headers,
            "body": _decode(raw, headers.get("content-type", ""), mode, method, request.url),
            "elapsed_ms": elapsed_ms,
        }
        if _fails(status, cfg.get("fail_on_status") or ()):
            raise HTTPBlockError(
                f"{method} {_redact(request.url)} answered {status}",
                block_type=self.type,
                retryable=status >= 500 or status == 429,
                details={"reason": "status", "status": status, "body": data["body"]},
            )
        port = "success" if status < 400 else "client_error" if status < 500 else "server_error"
        return Output(data, port)


def _fails(status: int, rules: Any) -> bool:
    """Whether ``status`` matches one of ``fail_on_status``'s codes or classes (``"5xx"``)."""
    for rule in rules:
        if rule == status or (isinstance(rule, str) and rule[0] == str(status)[0]):
            return True
    return False


async def _exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    follow: bool,
    allow_private: bool,
    max_body: int,
) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` (following redirects when asked) and read a capped body."""
    for _hop in range(MAX_REDIRECTS + 1):
        await _guard(request.url, allow_private)
        try:
            response = await client.send(request, follow_redirects=False, stream=True)
        except httpx.TimeoutException as exc:
            raise _network_error(request, "timed out", exc) from exc
        except httpx.ConnectError as exc:
            raise _network_error(request, f"could not connect ({exc or 'refused'})", exc) from exc
        except httpx.UnsupportedProtocol as exc:
            raise BlockError(
                f"refused {_redact(request.url)}: {exc}",
                block_type=HttpRequest.type,
                retryable=False,
            ) from exc
        except httpx.RequestError as exc:
            raise _network_error(request, f"{type(exc).__name__}: {exc}", exc) from exc
        try:
            if follow and response.next_request is not None:
                request = response.next_request
                continue
            raw = await _read_capped(response, request, max_body)
            return response.status_code, _flat_headers(response.headers), raw
        finally:
            await response.aclose()
    raise HTTPBlockError(
        f"{request.method} {_redact(request.url)} failed: more than {MAX_REDIRECTS} redirects",
        retryable=False,
        block_type=HttpRequest.type,
        details={"reason": "too_many_redirects"},
    )


async def _read_capped(response: httpx.Response, request: httpx.Request, max_body: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _too_large(request, f"declares {int(declared)} bytes", max_body)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_body:
                raise _too_large(request, f"exceeds {max_body} bytes", max_body)
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise _network_error(request, "timed out reading the response", exc) from exc
    except httpx.RequestError as exc:
        raise _network_error(request, f"{type(exc).__name__}: {exc}", exc) from exc
    return b"".join(chunks)


def _too_large(request: httpx.Request, what: str, max_body: int) -> BlockError:
    return BlockError(
        f"{request.method} {_redact(request.url)}: the response body {what}, more than the "
        f"limit of {max_body} bytes (set CONV3N_HTTP_MAX_BODY to raise it)",
        block_type=HttpRequest.type,
        retryable=False,
        details={"reason": "body_too_large", "limit": max_body},
    )


def _network_error(request: httpx.Request, reason: str, exc: Exception) -> HTTPBlockError:
    return HTTPBlockError(
        f"{request.method} {_redact(request.url)} failed: {reason}",
        block_type=HttpRequest.type,
        retryable=True,
        details={"reason": reason, "error": type(exc).__name__},
    )


# -- the private-address guard ---------------------------------------------------------------


async def _guard(url: httpx.URL, allow_private: bool) -> None:
    if url.scheme not in ("http", "https"):
        raise BlockError(
            f"refused {_redact(url)}: only http and https URLs are allowed",
            block_type=HttpRequest.type,
            retryable=False,
        )
    if allow_private:
        return
    host = url.host
    if not host:
        raise _config_error("url", f"{_redact(url)} has no host")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, url.port or 0, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise HTTPBlockError(
                f"{_redact(url)} failed: cannot resolve host {host!r} ({exc.strerror})",
                block_type=HttpRequest.type,
                details={"reason": "dns"},
            ) from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if _is_private(address):
            raise BlockError(
                f"refused {_redact(url)}: host {host!r} resolves to the non-public address "
                f"{address} (set allow_private: true on the node, or CONV3N_HTTP_ALLOW_PRIVATE, "
                "to allow it)",
                block_type=HttpRequest.type,
                retryable=False,
                details={"reason": "private_address", "address": str(address)},
            )


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None and _is_private(mapped):
            return True
    return bool(
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _env_allow_private() -> bool:
    raw = os.environ.get("CONV3N_HTTP_ALLOW_PRIVATE", "true").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise BlockError(
        f"CONV3N_HTTP_ALLOW_PRIVATE must be true or false, got {raw!r}",
        block_type=HttpRequest.type,
        retryable=False,
    )


# -- config → request pieces -----------------------------------------------------------------


def _config_error(key: str, reason: str) -> BlockError:
    return BlockError(f"config key {key!r}: {reason}", block_type=HttpRequest.type, retryable=False)


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _config_error(key, f"must be a boolean, got {json_type(value)} {value!r}")


def _timeout(value: Any, limit: float | None) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise _config_error("timeout", str(exc)) from exc
    if seconds <= 0:
        raise _config_error("timeout", "must be more than zero")
    if limit is not None:
        seconds = min(seconds, max(limit, 0.001))
    return seconds


def _max_body() -> int:
    raw = os.environ.get("CONV3N_HTTP_MAX_BODY")
    if raw is None or not raw.strip():
        return DEFAULT_MAX_BODY
    if not raw.strip().isdigit():
        raise BlockError(
            f"CONV3N_HTTP_MAX_BODY must be a whole number of bytes, got {raw!r}",
            block_type=HttpRequest.type,
            retryable=False,
        )
    return int(raw)


def _scalar(key: str, name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _config_error(
        key, f"value of {name!r} must be a string, number or boolean, got {json_type(value)}"
    )


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _config_error(key, f"must be an object, got {json_type(value)}")
    return value


def _query(value: Any) -> list[tuple[str, str | int | float | bool | None]]:
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, item in _mapping("query", value).items():
        if item is None:
            continue
        items = item if isinstance(item, (list, tuple)) else [item]
        pairs.extend((str(name), _scalar("query", name, v)) for v in items)
    return pairs


def _headers(value: Any, auth: Any) -> dict[str, str]:
    headers = {
        str(name): _scalar("headers", name, v)
        for name, v in _mapping("headers", value).items()
        if v is not None
    }
    if auth is None:
        return headers
    if not isinstance(auth, Mapping):
        raise _config_error("auth", f"must be an object, got {json_type(auth)}")
    kind = auth.get("type")
    if kind == "bearer":
        token = auth.get("token")
        if not isinstance(token, str) or not token:
            raise _config_error("auth", "a bearer auth needs a non-empty string 'token'")
        headers["Authorization"] = f"Bearer {token}"
    elif kind == "basic":
        user, password = auth.get("username"), auth.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise _config_error("auth", "a basic auth needs string 'username' and 'password'")
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    else:
        raise _config_error("auth", f"'type' must be 'bearer' or 'basic', got {kind!r}")
    return headers


def _content(cfg: Mapping[str, Any]) -> dict[str, Any]:
    has_body = cfg.get("body") is not None
    has_form = cfg.get("form") is not None
    if has_body and has_form:
        raise _config_error("form", "give either 'body' or 'form', not both")
    if has_form:
        return {
            "data": {
                str(k): _scalar("form", k, v) for k, v in _mapping("form", cfg["form"]).items()
            }
        }
    if not has_body:
        return {}
    body = cfg["body"]
    if isinstance(body, str):
        return {"content": body.encode("utf-8")}
    if isinstance(body, (bytes, bytearray)):
        return {"content": bytes(body)}
    return {"json": body}


# -- response --------------------------------------------------------------------------------


def _flat_headers(headers: httpx.Headers) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _text(raw: bytes, content_type: str) -> str:
    match = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    encoding = match.group(1) if match else "utf-8"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _decode(raw: bytes, content_type: str, mode: str, method: str, url: httpx.URL) -> Any:
    if mode == "bytes":
        return base64.b64encode(raw).decode("ascii")
    if mode == "text":
        return _text(raw, content_type)
    if not raw.strip():
        return None
    if mode == "json":
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BlockError(
                f"{method} {_redact(url)}: response is not JSON ({exc}); use response: text "
                "or auto to read it anyway",
                block_type=HttpRequest.type,
                retryable=False,
            ) from exc
    if _is_json_type(content_type):
        try:
            return json.loads(raw)
        except ValueError:
            # "auto" promises json-or-text: a server that mislabels its body still gets read.
            return _text(raw, content_type)
    return _text(raw, content_type)


def _redact(url: Any) -> str:
    """The URL with its password and secret-looking query values replaced by ``***``."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _value = piece.partition("=")
            pieces.append(f"{name}=***" if eq and _SENSITIVE_QUERY.search(name) else piece)
        query = "&".join(pieces)
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt
