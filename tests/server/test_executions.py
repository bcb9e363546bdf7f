"""Execution history over HTTP: pages and filters, retry from the failed node, cancel, SSE."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from ._workflows import delay, fetch, hello
from .conftest import Api


def _wait_status(
    client: httpx.Client, eid: str, wanted: str, seconds: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        row: dict[str, Any] = client.get(f"/api/executions/{eid}").json()
        if row["status"] == wanted or time.monotonic() > deadline:
            return row
        time.sleep(0.02)


def test_executions_list_pages_with_a_cursor_and_filters(client: httpx.Client) -> None:
    """Five runs of one workflow come back newest first in pages of 2, filters apply."""
    wid = "list-" + uuid.uuid4().hex[:10]
    client.post("/api/workflows", json=hello("paged", wid))
    before = time.time()
    ids = [client.post(f"/api/workflows/{wid}/run").json()["execution_id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"workflow_id": wid, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/executions", params=params).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))
    got = client.get("/api/executions", params={"workflow_id": wid, "status": "error"}).json()
    assert got["items"] == []
    iso = datetime.fromtimestamp(before - 1, timezone.utc).isoformat()
    assert (
        len(
            client.get("/api/executions", params={"workflow_id": wid, "since": iso}).json()["items"]
        )
        == 5
    )
    future = str(time.time() + 3600)
    assert client.get("/api/executions", params={"since": future}).json()["items"] == []
    assert client.get("/api/executions", params={"since": "yesterday"}).status_code == 422
    bad = client.get("/api/executions", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_request"
    assert client.get("/api/executions", params={"limit": 501}).status_code == 422


def test_read_an_execution_with_its_node_runs(client: httpx.Client) -> None:
    """GET /api/executions/{id} has the node runs; an unknown id is a JSON 404."""
    eid = client.post("/api/run", json=hello()).json()["execution_id"]
    row = client.get(f"/api/executions/{eid}").json()
    assert row["nodes"]["greet"]["status"] == "success"
    assert row["nodes"]["greet"]["output"] == {"greeting": "Hello, World!"}
    missing = client.get("/api/executions/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_retry_reruns_the_failed_node_and_reuses_upstream(
    client: httpx.Client, http_server: str
) -> None:
    """A node failing once succeeds on retry; its upstream node is reused, not called again."""
    key = uuid.uuid4().hex
    first = client.post("/api/run", json=fetch(http_server, key + "-a", key + "-b", fail=1)).json()
    assert first["status"] == "error"
    assert first["nodes"]["first"]["data"]["body"] == {"attempts": 1}

    r = client.post(f"/api/executions/{first['execution_id']}/retry")
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["status"] == "success"
    assert second["nodes"]["first"].get("reused") is True
    assert second["nodes"]["first"]["data"]["body"] == {"attempts": 1}  # not called again
    assert second["nodes"]["fetch"]["data"]["body"] == {"attempts": 2}
    row = client.get(f"/api/executions/{second['execution_id']}").json()
    assert row["retry_of"] == first["execution_id"]
    assert row["start_from"] == "fetch"

    again = client.post(f"/api/executions/{second['execution_id']}/retry")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert client.post("/api/executions/nope/retry").status_code == 404


def test_retry_without_wait_answers_202(client: httpx.Client, http_server: str) -> None:
    """Retry takes ?wait=false like /api/run."""
    key = uuid.uuid4().hex
    first = client.post("/api/run", json=fetch(http_server, key + "-a", key + "-b", fail=1)).json()
    r = client.post(f"/api/executions/{first['execution_id']}/retry?wait=false")
    assert r.status_code == 202
    assert _wait_status(client, r.json()["execution_id"], "success")["status"] == "success"


def test_cancel_a_running_delay(client: httpx.Client) -> None:
    """Cancel stops a running delay at once (202); a finished execution cannot be cancelled."""
    eid = client.post("/api/run?wait=false", json=delay("30s")).json()["execution_id"]
    assert _wait_status(client, eid, "running")["status"] == "running"
    start = time.monotonic()
    r = client.post(f"/api/executions/{eid}/cancel")
    assert r.status_code == 202
    assert r.json() == {"execution_id": eid, "status": "cancelling"}
    row = _wait_status(client, eid, "cancelled")
    assert row["status"] == "cancelled"
    assert time.monotonic() - start < 5
    again = client.post(f"/api/executions/{eid}/cancel")
    assert again.status_code == 409
    assert client.post("/api/executions/nope/cancel").status_code == 404


def test_events_stream_live_then_end(client: httpx.Client) -> None:
    """SSE: node events arrive while the execution runs, then execution_finished ends it."""
    eid = client.post("/api/run?wait=false", json=delay("400ms")).json()["execution_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/executions/{eid}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                assert name is not None
                events.append((name, json.loads(line[len("data: ") :])))
    names = [n for n, _ in events]
    assert names[-1] == "execution_finished"
    finished = [e["node_id"] for n, e in events if n == "node_finished"]
    assert finished == ["wait", "done"]
    assert all(e["execution_id"] == eid for _, e in events)


def test_events_of_a_finished_execution_are_its_final_state(client: httpx.Client) -> None:
    """For an execution that ended, the stream is one execution_finished event."""
    eid = client.post("/api/run", json=hello()).json()["execution_id"]
    text = client.get(f"/api/executions/{eid}/events").text
    assert text.count("event: ") == 1
    data = json.loads(text.split("data: ", 1)[1])
    assert data["data"]["status"] == "success"
    assert client.get("/api/executions/nope/events").status_code == 404


def test_events_stream_sends_keep_alive_comments(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While nothing happens, the stream sends comment lines to keep the connection open."""
    from conv3n_jupyter.server import routes_executions

    monkeypatch.setattr(routes_executions, "KEEPALIVE_SECONDS", 0.1)
    eid = client.post("/api/run?wait=false", json=delay("600ms")).json()["execution_id"]
    text = client.get(f"/api/executions/{eid}/events").text
    assert text.count(": keep-alive\n\n") >= 2
    assert text.rstrip().split("\n\n")[-1].startswith("event: execution_finished")


def test_retry_of_a_crashed_execution_starts_after_its_last_node(
    api: Api, client: httpx.Client
) -> None:
    """A crashed execution is retried from the successor of the last node that finished."""
    from conv3n_jupyter.store.executions import create_execution, update_execution, upsert_node_runs
    from conv3n_jupyter.store.maintenance import mark_crashed

    wf = {
        "name": "crashy",
        "nodes": {
            "stamp": {"type": "std/transform", "config": {"input": {"step": 1}}},
            "next": {"type": "std/noop"},
        },
        "edges": [{"source": "stamp", "target": "next"}],
    }
    store = api.app.state.conv3n.store
    eid = create_execution(store, workflow_name="crashy", status="running", definition=wf)
    upsert_node_runs(
        store,
        eid,
        [{"node_id": "stamp", "status": "success", "port": "default", "output": {"step": 7}}],
    )
    update_execution(store, eid, last_node="stamp")
    assert mark_crashed(store, execution_ids=[eid]) == 1

    r = client.post(f"/api/executions/{eid}/retry")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert body["nodes"]["stamp"]["reused"] is True
    assert body["nodes"]["stamp"]["data"] == {"step": 7}  # the stored output, not a re-run
    row = client.get(f"/api/executions/{body['execution_id']}").json()
    assert (row["retry_of"], row["start_from"]) == (eid, "next")
