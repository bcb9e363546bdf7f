"""The engine with the real HTTP block against a real server: retries, timeouts, ports, pooling."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from conv3n_jupyter.engine import run
from conv3n_jupyter.model import load


def http(url: str, **config: Any) -> dict[str, Any]:
    return {"type": "std/http_request", "config": {"url": url, **config}}


async def test_flaky_endpoint_succeeds_after_retries(http_server: str) -> None:
    key = uuid.uuid4().hex
    wf = load(
        {
            "name": "flaky",
            "nodes": {
                "call": {
                    **http(f"{http_server}/flaky/{key}?fail=2", fail_on_status=["5xx"]),
                    "retry": {"max_attempts": 3, "initial_delay": "20ms", "jitter": False},
                },
                "attempts": {
                    "type": "std/noop",
                    "config": {"value": "{{ $input.body.attempts }}"},
                    "depends_on": ["call"],
                },
            },
        }
    )
    r = await run(wf)
    assert r["status"] == "success", r
    assert r["nodes"]["call"]["attempts"] == 3
    assert r["output"] == 3
    assert any("retrying" in line["message"] for line in r["nodes"]["call"]["logs"])


async def test_retries_exhausted_fail_with_the_status(http_server: str) -> None:
    key = uuid.uuid4().hex
    wf = load(
        {
            "name": "flaky",
            "nodes": {
                "call": {
                    **http(f"{http_server}/flaky/{key}?fail=9", fail_on_status=["5xx"]),
                    "retry": {"max_attempts": 2, "initial_delay": "10ms"},
                }
            },
        }
    )
    r = await run(wf)
    assert r["status"] == "error"
    assert r["error"]["details"]["status"] == 503
    assert "answered 503" in r["error"]["message"]


async def test_slow_endpoint_hits_the_node_timeout(http_server: str) -> None:
    wf = load(
        {
            "name": "slow",
            "nodes": {"call": {**http(f"{http_server}/slow?ms=2000"), "timeout": "150ms"}},
        }
    )
    started = time.perf_counter()
    r = await run(wf)
    assert time.perf_counter() - started < 1.5
    assert r["status"] == "error"
    assert "timed out" in r["error"]["message"]


async def test_status_classes_route_to_ports(http_server: str) -> None:
    def branch(code: int) -> dict[str, Any]:
        return {
            "name": f"ports-{code}",
            "nodes": {
                "call": http(f"{http_server}/status/{code}"),
                "ok": {"type": "std/noop", "config": {"value": "ok"}},
                "client": {"type": "std/noop", "config": {"value": "client"}},
                "server": {"type": "std/noop", "config": {"value": "server"}},
            },
            "edges": [
                {"source": "call", "target": "ok", "sourceHandle": "success"},
                {"source": "call", "target": "client", "sourceHandle": "client_error"},
                {"source": "call", "target": "server", "sourceHandle": "server_error"},
            ],
        }

    for code, expected in ((200, "ok"), (404, "client"), (502, "server")):
        r = await run(load(branch(code)))
        assert r["status"] == "success"
        assert r["output"] == {expected: expected}, code


async def test_network_failure_goes_to_the_error_port_with_on_error_continue() -> None:
    wf = load(
        {
            "name": "refused",
            "nodes": {
                "call": {
                    **http("http://127.0.0.1:9/nothing", timeout="1s"),
                    "on_error": "continue",
                },
                "report": {"type": "std/noop", "config": {"value": "{{ $input.error.type }}"}},
            },
            "edges": [{"source": "call", "target": "report", "sourceHandle": "error"}],
        }
    )
    r = await run(wf)
    assert r["status"] == "success"
    assert r["output"] == "HTTPBlockError"


async def test_fan_out_respects_max_concurrent_nodes_at_the_server(http_server: str) -> None:
    async with httpx.AsyncClient() as client:
        # Requests abandoned by earlier tests may still sleep on the server: let them end first.
        deadline = time.monotonic() + 5
        while (await client.get(f"{http_server}/stats")).json()[
            "current"
        ] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await client.post(f"{http_server}/stats/reset")
    nodes = {f"c{i}": http(f"{http_server}/slow?ms=60") for i in range(12)}
    wf = load({"name": "fan", "nodes": nodes, "config": {"max_concurrent_nodes": 4}})
    r = await run(wf)
    assert r["status"] == "success"
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{http_server}/stats")).json()
    assert stats["max"] == 4
    assert stats["requests"] == 12


async def test_response_body_with_template_syntax_is_not_evaluated(http_server: str) -> None:
    wf = load(
        {
            "name": "echo",
            "nodes": {
                "start": {"type": "std/noop"},
                "call": {
                    **http(f"{http_server}/echo", method="POST", body="{{ $input }}"),
                    "depends_on": ["start"],
                },
                "pick": {
                    "type": "std/noop",
                    "config": {"value": "{{ $input.body.body }}"},
                    "depends_on": ["call"],
                },
            },
        }
    )
    payload = {"evil": "{{ $env.HOME }}", "math": "{{ 6 * 7 }}"}
    r = await run(wf, trigger=payload)
    assert r["status"] == "success", r
    assert r["output"] == payload
