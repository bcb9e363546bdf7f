"""Tests of ``std/http_request`` against the real test HTTP server (see ``tests/conftest.py``)."""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
import uuid
from typing import Any

import httpx
import jsonschema
import pytest

from conv3n_jupyter.blocks.base import Output
from conv3n_jupyter.blocks.std.http_request import HttpRequest, _guard, _is_private, _redact
from conv3n_jupyter.errors import BlockError, HTTPBlockError
from tests.blocks.fakectx import FakeContext
from tests.conftest import BYTES, JSON_DOC, TEXT

BLOCK = HttpRequest()


async def run(client: httpx.AsyncClient, config: dict[str, Any], **kw: Any) -> Output:
    out = await BLOCK.run(FakeContext(BLOCK, config, http_client=client, **kw))
    assert isinstance(out, Output)
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONV3N_HTTP_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("CONV3N_HTTP_MAX_BODY", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- requests and responses ------------------------------------------------------------------


async def test_get_json_gives_status_headers_body_and_time(http_server, http_client) -> None:
    """A GET of a JSON document is parsed and leaves on port success."""
    out = await run(http_client, {"url": f"{http_server}/json"})
    assert out.port == "success"
    assert out.data["status"] == 200
    assert out.data["body"] == JSON_DOC
    assert out.data["headers"]["content-type"] == "application/json"
    assert all(k == k.lower() for k in out.data["headers"])
    assert isinstance(out.data["elapsed_ms"], float) and out.data["elapsed_ms"] > 0


@pytest.mark.parametrize(
    ("code", "port"),
    [
        (200, "success"),
        (201, "success"),
        (302, "success"),
        (400, "client_error"),
        (404, "client_error"),
        (429, "client_error"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
async def test_status_picks_the_port(http_server, http_client, code: int, port: str) -> None:
    """2xx/3xx go to success, 4xx to client_error, 5xx to server_error; no exception."""
    out = await run(http_client, {"url": f"{http_server}/status/{code}"})
    assert (out.port, out.data["status"]) == (port, code)
    assert out.data["body"] == {"status": code}


async def test_no_content_gives_null_body(http_server, http_client) -> None:
    """An empty body reads as null in auto mode."""
    out = await run(http_client, {"url": f"{http_server}/status/204"})
    assert out.data["body"] is None


async def test_object_body_is_sent_as_json(http_server, http_client) -> None:
    """An object body becomes JSON with a JSON content type."""
    body = {"a": 1, "nested": {"b": [1, 2]}, "text": "é"}
    out = await run(http_client, {"url": f"{http_server}/echo", "method": "POST", "body": body})
    echo = out.data["body"]
    assert echo["method"] == "POST"
    assert echo["body"] == body
    assert echo["headers"]["content-type"] == "application/json"


async def test_list_body_is_sent_as_json(http_server, http_client) -> None:
    """A list body is JSON too."""
    out = await run(http_client, {"url": f"{http_server}/echo", "method": "PUT", "body": [1, 2]})
    assert out.data["body"]["body"] == [1, 2]


async def test_string_body_is_sent_as_is(http_server, http_client) -> None:
    """A string body is sent verbatim, with the caller's content type."""
    config = {
        "url": f"{http_server}/echo",
        "method": "POST",
        "body": "<x>{not json}</x>",
        "headers": {"Content-Type": "application/xml"},
    }
    out = await run(http_client, config)
    assert out.data["body"]["body"] == "<x>{not json}</x>"
    assert out.data["body"]["headers"]["content-type"] == "application/xml"


async def test_form_is_urlencoded(http_server, http_client) -> None:
    """`form` sends application/x-www-form-urlencoded fields."""
    config = {"url": f"{http_server}/echo", "method": "POST", "form": {"a": "1", "b": 2, "c": True}}
    out = await run(http_client, config)
    assert out.data["body"]["form"] == {"a": "1", "b": "2", "c": "true"}


async def test_body_and_form_together_are_refused(http_server, http_client) -> None:
    """Giving both body and form is a config error that a retry cannot fix."""
    config = {"url": f"{http_server}/echo", "method": "POST", "body": {}, "form": {"a": 1}}
    with pytest.raises(BlockError, match="either 'body' or 'form'") as info:
        await run(http_client, config)
    assert info.value.retryable is False


async def test_headers_and_query_are_merged(http_server, http_client) -> None:
    """Headers are sent; query params join the URL's own; lists repeat; null is dropped."""
    config = {
        "url": f"{http_server}/echo?fixed=1",
        "headers": {"X-Num": 5, "X-Flag": False, "X-None": None},
        "query": {"q": "a b", "page": 2, "tag": ["x", "y"], "off": None, "yes": True},
    }
    out = await run(http_client, config)
    echo = out.data["body"]
    assert echo["query"] == {
        "fixed": "1",
        "q": "a b",
        "page": "2",
        "tag": ["x", "y"],
        "yes": "true",
    }
    assert echo["headers"]["x-num"] == "5"
    assert echo["headers"]["x-flag"] == "false"
    assert "x-none" not in echo["headers"]


@pytest.mark.parametrize("method", ["get", "POST", "Put", "PATCH", "DELETE", "OPTIONS"])
async def test_every_method_is_sent(http_server, http_client, method: str) -> None:
    """Each allowed method reaches the server, in any letter case."""
    out = await run(http_client, {"url": f"{http_server}/echo", "method": method})
    assert out.data["body"]["method"] == method.upper()


async def test_head_has_no_body(http_server, http_client) -> None:
    """HEAD answers with headers and a null body."""
    out = await run(http_client, {"url": f"{http_server}/json", "method": "HEAD"})
    assert out.port == "success"
    assert out.data["body"] is None
    assert out.data["headers"]["content-type"] == "application/json"


async def test_repeated_headers_are_joined(http_server, http_client) -> None:
    """A header sent twice reads as one value joined with ', '."""
    out = await run(http_client, {"url": f"{http_server}/headers/repeated"})
    assert out.data["headers"]["x-multi"] == "a, b"


@pytest.mark.parametrize(
    ("path", "mode", "expected"),
    [
        ("/text", "auto", TEXT),
        ("/text", "text", TEXT),
        ("/json", "text", None),
        ("/json", "json", JSON_DOC),
        ("/broken-json", "auto", "{not json"),
        ("/bytes", "bytes", base64.b64encode(BYTES).decode()),
    ],
)
async def test_response_modes(http_server, http_client, path, mode, expected) -> None:
    """auto is JSON-or-text, text is always text, bytes is base64, json parses."""
    out = await run(http_client, {"url": f"{http_server}{path}", "response": mode})
    if expected is None:
        assert isinstance(out.data["body"], str) and '"items"' in out.data["body"]
    else:
        assert out.data["body"] == expected


async def test_json_mode_on_text_is_an_error(http_server, http_client) -> None:
    """Asking for JSON from a text response fails clearly and is not retried."""
    with pytest.raises(BlockError, match="response is not JSON") as info:
        await run(http_client, {"url": f"{http_server}/text", "response": "json"})
    assert info.value.retryable is False


# -- redirects ---------------------------------------------------------------------------------


async def test_redirects_are_followed_by_default(http_server, http_client) -> None:
    """A redirect chain ends at the target document."""
    out = await run(http_client, {"url": f"{http_server}/redirect?to=/json&n=3"})
    assert out.data["status"] == 200
    assert out.data["body"] == JSON_DOC


async def test_redirects_can_be_left_alone(http_server, http_client) -> None:
    """follow_redirects false returns the 3xx itself with its location."""
    config = {"url": f"{http_server}/redirect?to=/json", "follow_redirects": False}
    out = await run(http_client, config)
    assert out.port == "success"
    assert out.data["status"] == 302
    assert out.data["headers"]["location"] == "/json"


async def test_303_turns_post_into_get(http_server, http_client) -> None:
    """Redirect semantics follow HTTP: a 303 after POST is fetched with GET."""
    config = {
        "url": f"{http_server}/redirect?to=/echo&status=303",
        "method": "POST",
        "body": {"a": 1},
    }
    out = await run(http_client, config)
    assert out.data["body"]["method"] == "GET"


async def test_endless_redirects_fail(http_server, http_client) -> None:
    """More than 20 hops is an error that a retry cannot fix."""
    with pytest.raises(HTTPBlockError, match="more than 20 redirects") as info:
        await run(http_client, {"url": f"{http_server}/redirect?to=/json&n=25"})
    assert info.value.retryable is False


async def test_redirect_to_another_scheme_is_refused(http_server, http_client) -> None:
    """A redirect may not leave http/https."""
    with pytest.raises(BlockError) as info:
        await run(http_client, {"url": f"{http_server}/redirect?to=file:///etc/passwd"})
    assert info.value.retryable is False


# -- auth --------------------------------------------------------------------------------------


async def test_bearer_auth(http_server, http_client) -> None:
    """A bearer token becomes the Authorization header."""
    config = {"url": f"{http_server}/auth", "auth": {"type": "bearer", "token": "t0k"}}
    out = await run(http_client, config)
    assert out.data["body"] == {"authorization": "Bearer t0k"}


async def test_basic_auth(http_server, http_client) -> None:
    """Basic auth sends base64 of user:password."""
    config = {
        "url": f"{http_server}/auth",
        "auth": {"type": "basic", "username": "ann", "password": "p:w"},
    }
    out = await run(http_client, config)
    expected = "Basic " + base64.b64encode(b"ann:p:w").decode()
    assert out.data["body"] == {"authorization": expected}


async def test_unknown_auth_type_is_refused(http_server, http_client) -> None:
    """An auth type other than bearer/basic is a config error."""
    with pytest.raises(BlockError, match="'bearer' or 'basic'"):
        await run(http_client, {"url": f"{http_server}/auth", "auth": {"type": "digest"}})


# -- failures ------------------------------------------------------------------------------------


async def test_timeout_is_a_retryable_network_error(http_server, http_client) -> None:
    """A server slower than `timeout` fails fast with a retryable HTTPBlockError."""
    started = time.perf_counter()
    with pytest.raises(HTTPBlockError, match="timed out") as info:
        await run(http_client, {"url": f"{http_server}/slow?ms=3000", "timeout": "200ms"})
    assert time.perf_counter() - started < 2
    assert info.value.retryable is True
    assert f"{http_server}/slow?ms=3000" in str(info.value)
    assert info.value.__cause__ is not None


async def test_node_time_limit_caps_the_request_timeout(http_server, http_client) -> None:
    """The request never outlives the node's remaining time (ctx.timeout)."""
    started = time.perf_counter()
    with pytest.raises(HTTPBlockError, match="timed out"):
        await run(http_client, {"url": f"{http_server}/slow?ms=3000"}, timeout=0.2)
    assert time.perf_counter() - started < 2


async def test_connection_refused_is_retryable(http_client) -> None:
    """Nothing listening: a retryable error naming the URL, chained to httpx's."""
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(HTTPBlockError, match="could not connect") as info:
        await run(http_client, {"url": url})
    assert url in str(info.value)
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_unresolvable_host_is_retryable(http_client) -> None:
    """A DNS failure is a network error (it may be transient)."""
    with pytest.raises(HTTPBlockError) as info:
        await run(http_client, {"url": "http://no-such-host.invalid/x", "timeout": "5s"})
    assert info.value.retryable is True
    assert "no-such-host.invalid" in str(info.value)


async def test_errors_redact_passwords_and_secret_query_values(http_client) -> None:
    """A failing URL is named without its password or token values."""
    url = f"http://bob:hunter2@127.0.0.1:{free_port()}/x?api_key=s3cret&page=2"
    with pytest.raises(HTTPBlockError) as info:
        await run(http_client, {"url": url})
    message = str(info.value)
    assert "hunter2" not in message and "s3cret" not in message
    assert "bob:***@" in message and "api_key=***" in message and "page=2" in message


def test_redact_leaves_plain_urls_alone() -> None:
    """Redaction touches only secrets."""
    assert _redact("https://example.org/a?page=1") == "https://example.org/a?page=1"
    assert _redact("https://example.org/a?access_token=x&q=1") == (
        "https://example.org/a?access_token=***&q=1"
    )


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"url": ""}, "'url'"),
        ({"url": "http://"}, "'url'"),
        ({"url": "/relative"}, "'url'"),
        ({"url": "http://x", "method": "FETCH"}, "'method'"),
        ({"url": "http://x", "timeout": "soon"}, "'timeout'"),
        ({"url": "http://x", "timeout": 0}, "'timeout'"),
        ({"url": "http://x", "response": "xml"}, "'response'"),
        ({"url": "http://x", "query": "a=1"}, "'query'"),
        ({"url": "http://x", "headers": {"a": {"b": 1}}}, "'headers'"),
        ({"url": "http://x", "follow_redirects": "maybe"}, "'follow_redirects'"),
    ],
)
async def test_bad_config_fails_without_retry(http_client, config, match) -> None:
    """Bad resolved config values name their key and are not retryable."""
    with pytest.raises(BlockError, match=match) as info:
        await run(http_client, config)
    assert info.value.retryable is False


# -- private addresses -----------------------------------------------------------------------


async def test_private_hosts_are_refused_when_not_allowed(http_server, http_client) -> None:
    """allow_private false refuses loopback, without retry, before any request."""
    with pytest.raises(BlockError, match=r"non-public address 127\.0\.0\.1") as info:
        await run(http_client, {"url": f"{http_server}/json", "allow_private": False})
    assert info.value.retryable is False


async def test_names_are_resolved_before_the_check(http_server, http_client) -> None:
    """A host name that resolves to loopback is refused as well."""
    port = http_server.rsplit(":", 1)[1]
    with pytest.raises(BlockError, match="non-public address") as info:
        await run(http_client, {"url": f"http://localhost:{port}/json", "allow_private": False})
    assert info.value.retryable is False


async def test_environment_sets_the_default(http_server, http_client, monkeypatch) -> None:
    """CONV3N_HTTP_ALLOW_PRIVATE=false makes refusal the default; the node can override it."""
    monkeypatch.setenv("CONV3N_HTTP_ALLOW_PRIVATE", "false")
    with pytest.raises(BlockError, match="non-public"):
        await run(http_client, {"url": f"{http_server}/json"})
    out = await run(http_client, {"url": f"{http_server}/json", "allow_private": True})
    assert out.data["status"] == 200


async def test_private_hosts_are_allowed_by_default(http_server, http_client) -> None:
    """Local and CLI use may call local services unless configured otherwise."""
    out = await run(http_client, {"url": f"{http_server}/json"})
    assert out.data["status"] == 200


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_address_classes(address: str, private: bool) -> None:
    """Loopback, private, link-local, shared, multicast, unspecified, mapped: all private."""
    assert _is_private(ipaddress.ip_address(address)) is private


async def test_public_ip_literal_passes_the_guard_without_dns() -> None:
    """A public IP literal is checked without any lookup."""
    await _guard(httpx.URL("https://8.8.8.8/"), allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd"])
async def test_only_http_schemes(http_client, url: str) -> None:
    """Other schemes are refused even when private hosts are allowed."""
    with pytest.raises(BlockError) as info:
        await run(http_client, {"url": url, "allow_private": True})
    assert info.value.retryable is False


# -- size cap and the shared client ----------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_large_bodies_are_capped(http_server, http_client, monkeypatch, chunked) -> None:
    """A body over CONV3N_HTTP_MAX_BODY fails clearly, with or without a Content-Length."""
    monkeypatch.setenv("CONV3N_HTTP_MAX_BODY", "4096")
    url = f"{http_server}/large?kb=64" + ("&chunked=1" if chunked else "")
    with pytest.raises(BlockError, match="CONV3N_HTTP_MAX_BODY") as info:
        await run(http_client, {"url": url})
    assert info.value.retryable is False
    out = await run(http_client, {"url": f"{http_server}/large?kb=4", "response": "bytes"})
    assert len(base64.b64decode(out.data["body"])) == 4096


async def test_uses_the_shared_client_and_leaves_it_open(http_server, http_client) -> None:
    """The block borrows ctx.http() and never closes it: later nodes reuse its pool."""
    for _ in range(3):
        await run(http_client, {"url": f"{http_server}/json"})
    assert not http_client.is_closed


async def test_flaky_endpoint_reports_server_error_then_success(http_server, http_client) -> None:
    """A 503 is a port, not an exception: routing (or retries) decide what happens next."""
    url = f"{http_server}/flaky/{uuid.uuid4().hex}?fail=1"
    first = await run(http_client, {"url": url})
    second = await run(http_client, {"url": url})
    assert (first.port, second.port) == ("server_error", "success")
    assert second.data["body"] == {"attempts": 2}


def test_config_schema_is_valid_and_complete() -> None:
    """The schema is valid JSON Schema, closed, and accepts/rejects typical configs."""
    schema = HttpRequest.config_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "url": "https://api.example.org/x",
        "method": "POST",
        "headers": {"X-A": "1"},
        "query": {"a": [1, 2]},
        "body": {"x": 1},
        "timeout": "10s",
        "follow_redirects": False,
        "response": "json",
        "auth": {"type": "bearer", "token": "{{ $secrets.TOKEN }}"},
        "allow_private": False,
    }
    assert not list(validator.iter_errors(good))
    assert not list(validator.iter_errors({"url": "x", "method": "{{ $params.m }}"}))
    for bad in (
        {},
        {"url": "x", "method": "FETCH"},
        {"url": "x", "extra": 1},
        {"url": "x", "auth": {"type": "bearer"}},
        {"url": "x", "response": "xml"},
    ):
        assert list(validator.iter_errors(bad)), bad
