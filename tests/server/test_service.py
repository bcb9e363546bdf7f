"""The service around the API: /health, /metrics, JSON logs, /docs, errors, `conv3n serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conv3n_jupyter.store.database import create_engine, open_store
from conv3n_jupyter.store.executions import create_execution

from ..store.conftest import pg_schema
from ._workflows import fetch, hello
from .conftest import Api, start_api


@pytest.fixture
def own_api(tmp_path: Path) -> Iterator[Api]:
    """A server of its own, for tests that break its store."""
    found, stop = start_api(tmp_path / "own.db")
    try:
        yield found
    finally:
        stop()


def test_health_reports_store_and_executor(client: httpx.Client) -> None:
    """/health is 200 with the store reachable and the executor's stats."""
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"] == {"ok": True, "dialect": "sqlite"}
    assert body["executor"]["kind"] == "in-process"
    assert body["executor"]["alive"] is True


def test_unreachable_store_gives_503_health_and_json_500s(own_api: Api) -> None:
    """With the database gone, /health is 503 and a store route a 500 without a traceback."""
    store = own_api.app.state.conv3n.store
    healthy = store.engine
    store.engine = create_engine("sqlite:////nonexistent-dir-conv3n/x.db")
    try:
        with httpx.Client(base_url=own_api.url) as c:
            r = c.get("/health")
            assert r.status_code == 503
            assert r.json()["status"] == "unavailable"
            assert r.json()["store"]["ok"] is False
            r = c.get("/api/workflows")
            assert r.status_code == 500
            assert r.json() == {
                "error": {
                    "code": "internal",
                    "message": "the store failed; see the service log",
                    "details": None,
                }
            }
            assert "Traceback" not in r.text and "nonexistent" not in r.text
    finally:
        store.engine.dispose()
        store.engine = healthy
    errors = [rec for rec in own_api.logs.records() if rec["event"] == "store_error"]
    assert errors and "nonexistent" not in errors[0].get("path", "")


def test_metrics_after_runs(client: httpx.Client) -> None:
    """/metrics counts executions by status, node durations, requests by route template."""
    client.post("/api/run", json=hello())
    eid = client.post("/api/run", json=hello()).json()["execution_id"]
    client.get(f"/api/executions/{eid}")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    success = re.search(r'^conv3n_executions_total\{status="success"\} (\d+)', text, re.M)
    assert success and float(success.group(1)) >= 2
    assert re.search(r'^conv3n_node_duration_seconds_count\{status="success"\} [1-9]', text, re.M)
    assert "conv3n_queue_depth 0.0" in text
    assert "conv3n_executions_running 0.0" in text
    assert "conv3n_workers_alive 1.0" in text
    assert (
        'conv3n_http_request_duration_seconds_count{method="GET",'
        'route="/api/executions/{execution_id}",status="200"}'
    ) in text
    assert eid not in text  # the template, never the raw path


def test_logs_are_json_lines_with_ids(api: Api, client: httpx.Client) -> None:
    """Each request and each execution's start and end are logged as JSON with their ids."""
    eid = client.post("/api/run", json=hello("logged")).json()["execution_id"]
    records = api.logs.records()
    assert all({"ts", "level", "event", "message"} <= set(r) for r in records)
    mine = [r for r in records if r.get("execution_id") == eid]
    events = [r["event"] for r in mine]
    assert events.index("execution_queued") < events.index("execution_started")
    assert events.index("execution_started") < events.index("execution_finished")
    finished = next(r for r in mine if r["event"] == "execution_finished")
    assert finished["workflow"] == "logged" and finished["status"] == "success"
    node = next(r for r in mine if r["event"] == "node_finished")
    assert node["node_id"] == "greet"
    request = [r for r in records if r["event"] == "http_request" and r["path"] == "/api/run"]
    assert request[-1]["method"] == "POST"
    assert request[-1]["status"] == 200
    assert isinstance(request[-1]["duration_ms"], float)


def test_docs_page_is_self_contained_and_lists_every_path(client: httpx.Client) -> None:
    """/docs documents every OpenAPI path and loads nothing from elsewhere."""
    spec = client.get("/openapi.json").json()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for path, item in spec["paths"].items():
        assert f"<code>{path}</code>" in html
        for method in item:
            assert f">{method.upper()}<" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html
    assert client.get("/redoc").status_code == 404
    assert "RunRequest" in html and "Example" in html


def test_openapi_documents_bodies_and_errors(client: httpx.Client) -> None:
    """The OpenAPI document has body schemas for run and error models for its answers."""
    spec = client.get("/openapi.json").json()
    run = spec["paths"]["/api/run"]["post"]
    schema = run["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) >= {"workflow", "workflow_id", "params", "version"}
    assert "422" in run["responses"] and "202" in run["responses"]
    assert "ErrorResponse" in spec["components"]["schemas"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_conv3n_serve_marks_crashed_and_resumes_queued(tmp_path: Path) -> None:
    """`conv3n serve` prints its URL, marks left-running executions crashed, runs queued ones."""
    db = tmp_path / "serve.db"
    url = f"sqlite:///{db}"
    store = open_store(url)
    try:
        left = create_execution(store, workflow_name="old", status="running")
        queued = create_execution(store, workflow_name="hello", status="queued", definition=hello())
    finally:
        store.close()
    port = _free_port()
    env = {
        **os.environ,
        "CONV3N_DATABASE_URL": url,
        "CONV3N_LOG_FORMAT": "json",
        "CONV3N_CONFIG": "",
    }
    errlog = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conv3n_jupyter.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=errlog,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, (tmp_path / "stderr.log").read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/health").status_code == 200
            assert c.get(f"/api/executions/{left}").json()["status"] == "crashed"
            deadline = time.monotonic() + 10
            while c.get(f"/api/executions/{queued}").json()["status"] != "success":
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()
        errlog.close()
    assert proc.returncode == 0
    records = [
        json.loads(x)
        for x in (tmp_path / "stderr.log").read_text().splitlines()
        if x.startswith("{")
    ]
    marked = next(r for r in records if r["event"] == "crashed_marked")
    assert marked["count"] == 1


def test_the_api_on_postgresql(http_server: str) -> None:
    """Runs, saved workflows, history pages and retry work on a PostgreSQL store."""
    with pg_schema("conv3n_api") as url:
        found, stop = start_api(url)
        try:
            with httpx.Client(base_url=found.url, timeout=30) as c:
                assert c.get("/health").json()["store"] == {"ok": True, "dialect": "postgresql"}
                c.post("/api/workflows", json=hello("pg", "pg-hello"))
                ids = [
                    c.post("/api/workflows/pg-hello/run").json()["execution_id"] for _ in range(3)
                ]
                page = c.get("/api/executions", params={"limit": 2}).json()
                rest = c.get("/api/executions", params={"cursor": page["next_cursor"]}).json()
                assert [i["id"] for i in page["items"] + rest["items"]] == ids[::-1]
                key = os.urandom(6).hex()
                failed = c.post("/api/run", json=fetch(http_server, key + "a", key + "b")).json()
                assert failed["status"] == "error"
                retried = c.post(f"/api/executions/{failed['execution_id']}/retry").json()
                assert retried["status"] == "success"
                assert retried["nodes"]["first"]["reused"] is True
        finally:
            stop()


def test_workers_setting_selects_the_worker_pool(tmp_path: Path) -> None:
    """workers >= 1 runs executions in supervised worker processes."""
    found, stop = start_api(tmp_path / "pool.db", workers=1)
    try:
        with httpx.Client(base_url=found.url, timeout=30) as c:
            assert c.get("/health").json()["executor"]["kind"] == "worker-pool"
            r = c.post("/api/run", json={"workflow": hello(), "params": {"name": "Pool"}})
            assert r.json()["output"] == {"greeting": "Hello, Pool!"}
            assert "conv3n_workers_alive 1.0" in c.get("/metrics").text
    finally:
        stop()


def test_text_log_format_and_level() -> None:
    """log_format "text" writes one readable line per event; records below the level are dropped."""
    import io

    from conv3n_jupyter.server.logs import configure_logging, log, reset_logging

    stream = io.StringIO()
    logger = configure_logging("info", "text", stream)
    try:
        log(logger, "debug", "hidden", "not shown")
        log(logger, "info", "execution_started", "execution e1 started", execution_id="e1")
    finally:
        reset_logging(logger)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\S+Z INFO    execution_started: execution e1 started execution_id=e1", lines[0]
    )


def test_an_unexpected_error_is_a_json_500_without_traceback(tmp_path: Path) -> None:
    """A route that raises answers 500 in the error shape; the log has the reason."""

    def add_broken_route(app: Any) -> None:
        async def boom() -> None:
            raise RuntimeError("secret detail /etc/passwd")

        app.add_api_route("/boom", boom)

    found, stop = start_api(tmp_path / "boom.db", prepare=add_broken_route)
    try:
        with httpx.Client(base_url=found.url) as c:
            r = c.get("/boom")
    finally:
        stop()
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal"
    assert "secret" not in r.text and "Traceback" not in r.text
    failed = [rec for rec in found.logs.records() if rec["event"] == "request_failed"]
    assert "secret detail" in failed[0]["message"]


SERVE = ("-m", "conv3n_jupyter.cli", "serve", "--workers", "0", "--port")


def test_validation_survives_a_small_process_stack(tmp_path: Path) -> None:
    """A long operator chain (within the expression limits) is parsed on the validation
    threads' own stack: on a 256 KiB process stack the API neither crashes nor refuses it."""
    port = _free_port()
    env = {
        **os.environ,
        "CONV3N_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "CONV3N_CONFIG": "",
    }
    proc = subprocess.Popen(
        # The shell lowers the soft stack limit, then becomes the server (no preexec_fn: a
        # fork hook in a threaded test process is unsafe).
        ["sh", "-c", 'ulimit -S -s 256 && exec "$0" "$@"', sys.executable, *SERVE, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    chain = "{{ 1" + "+1" * 2040 + " }}"
    wf = {"name": "chain", "nodes": {"a": {"type": "std/transform", "config": {"input": chain}}}}
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            r = c.post("/api/validate", json=wf)
            assert r.status_code == 200 and r.json()["valid"] is True
            assert c.get("/health").status_code == 200
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()
