"""POST /api/run and /api/validate: results, queueing, validation, error shapes, limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx

from ._workflows import fetch, hello
from .conftest import MAX_BODY


def test_run_waits_and_answers_like_the_cli(client: httpx.Client) -> None:
    """A run with wait answers 200 with the execution result (status, output, nodes)."""
    r = client.post("/api/run", json={"workflow": hello(), "params": {"name": "Ada"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert body["output"] == {"greeting": "Hello, Ada!"}
    assert set(body) >= {"execution_id", "workflow", "duration_ms", "params", "nodes"}
    assert body["nodes"]["greet"]["status"] == "success"


def test_a_bare_workflow_body_runs_with_its_defaults(client: httpx.Client) -> None:
    """A body without workflow/workflow_id is the workflow itself."""
    r = client.post("/api/run", json=hello())
    assert r.status_code == 200
    assert r.json()["output"] == {"greeting": "Hello, World!"}


def test_run_without_wait_answers_202_then_the_execution_ends(client: httpx.Client) -> None:
    """?wait=false answers 202 with the id and links; the execution then finishes."""
    r = client.post("/api/run?wait=false", json={"workflow": hello(), "params": {"name": "Bo"}})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued"
    eid = body["execution_id"]
    assert body["links"]["self"] == f"/api/executions/{eid}"
    events = client.get(body["links"]["events"]).text  # ends when the execution ends
    assert "event: execution_finished" in events
    row = client.get(f"/api/executions/{eid}").json()
    assert row["status"] == "success"
    assert row["trigger"] == {"type": "api"}
    assert row["output"] == {"greeting": "Hello, Bo!"}


def test_a_failing_workflow_answers_200_with_status_error(
    client: httpx.Client, http_server: str
) -> None:
    """A workflow whose node fails is a result, not an HTTP error."""
    key = uuid.uuid4().hex
    r = client.post("/api/run", json=fetch(http_server, key + "a", key + "b", fail=5))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "error"
    assert body["error"]["node"] == "fetch"
    assert body["nodes"]["first"]["status"] == "success"


def test_an_invalid_workflow_answers_422_with_every_problem(client: httpx.Client) -> None:
    """Every validation problem is listed in error.details, with its path."""
    bad = {
        "name": "",
        "nodes": {
            "a": {"type": "std/nope"},
            "b": {"type": "std/delay", "config": {"bogus": 1}},
        },
        "edges": [{"source": "a", "target": "zz"}],
    }
    r = client.post("/api/run", json={"workflow": bad})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_workflow"
    paths = [p["path"] for p in error["details"]]
    assert "name" in paths
    assert "nodes.a.type" in paths
    assert any(p.startswith("nodes.b.config") for p in paths)
    assert any(p.startswith("edges[0]") for p in paths)
    assert len(error["details"]) >= 4


def test_bad_params_answer_422_before_anything_is_queued(client: httpx.Client) -> None:
    """A parameter of the wrong type is refused with its name."""
    r = client.post("/api/run", json={"workflow": hello(), "params": {"name": 3, "x": 1}})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert {p["path"] for p in error["details"]} == {"params.name", "params.x"}


def test_malformed_json_answers_400_with_the_position(client: httpx.Client) -> None:
    """Broken JSON is a 400 naming line, column and offset."""
    r = client.post(
        "/api/run",
        content=b'{"workflow":\n  {"name": }',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"] == {"line": 2, "column": 12, "position": 24}
    nan = client.post("/api/validate", content=b'{"name": NaN}')
    assert nan.status_code == 400


def test_an_oversize_body_answers_413(client: httpx.Client) -> None:
    """Bodies above api_max_body are refused, by Content-Length and when streamed."""
    big = json.dumps({"workflow": hello(), "x-pad": "x" * MAX_BODY}).encode()
    r = client.post("/api/run", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(0, len(big), 8192):
            yield big[:8192]

    r = client.post("/api/run", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_unknown_routes_and_methods_answer_json(client: httpx.Client) -> None:
    """404 and 405 come in the one error shape."""
    r = client.get("/api/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = client.get("/api/run")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "invalid_request"
    assert "POST" in r.json()["error"]["message"]
    r = client.get("/api/executions?limit=0")
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["location"] == "query.limit"


def test_validate_answers_200_either_way(client: httpx.Client) -> None:
    """/api/validate tells valid or not, with every problem, always with 200."""
    ok = client.post("/api/validate", json=hello())
    assert ok.status_code == 200
    assert ok.json() == {"valid": True, "problems": []}
    bad = client.post("/api/validate", json={"nodes": {"a": {"type": "std/transform"}}})
    assert bad.status_code == 200
    body = bad.json()
    assert body["valid"] is False
    assert {p["path"] for p in body["problems"]} >= {"name"}


def test_validation_compiles_but_never_evaluates_expressions(client: httpx.Client) -> None:
    """An expression that would fail when evaluated (division by zero) validates fine;
    a syntax error is reported as a problem."""
    wf = hello()
    wf["nodes"]["greet"]["config"]["operations"][0]["values"]["x"] = "{{ 1 / 0 }}"
    assert client.post("/api/validate", json=wf).json()["valid"] is True
    wf["nodes"]["greet"]["config"]["operations"][0]["values"]["x"] = "{{ 1 + }}"
    body = client.post("/api/validate", json=wf).json()
    assert body["valid"] is False
    assert "expression" in body["problems"][0]["reason"]


def test_blocks_lists_every_block_with_its_schema(client: httpx.Client) -> None:
    """/api/blocks lists built-in blocks with config schemas and ports."""
    body = client.get("/api/blocks").json()
    types = {b["type"]: b for b in body["items"]}
    assert {"std/transform", "std/http_request", "std/delay"} <= set(types)
    assert types["std/delay"]["config_schema"]["type"] == "object"
    assert types["std/delay"]["ports"]


def test_hostile_workflows_are_refused_without_a_server_error(client: httpx.Client) -> None:
    """Deeply nested expressions and code are validation problems, never a 5xx or a crash."""
    deep_expr = {
        "name": "h",
        "nodes": {
            "a": {
                "type": "std/transform",
                "config": {
                    "input": "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}",
                    "operations": [],
                },
            }
        },
    }
    r = client.post("/api/validate", json=deep_expr)
    assert r.status_code == 200 and r.json()["valid"] is False
    code = "x = " + "-" * 50_000 + "1\ndef main(input, ctx):\n    return 1\n"
    deep_code = {"name": "c", "nodes": {"a": {"type": "custom/code", "config": {"code": code}}}}
    r = client.post("/api/run", json=deep_code)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_workflow"
    assert client.get("/health").status_code == 200
