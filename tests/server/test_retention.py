"""`conv3n serve` with history retention and a files root from its settings file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conv3n_jupyter.store.database import open_store
from conv3n_jupyter.store.executions import create_execution, update_execution


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_conv3n_serve_prunes_old_history_at_start_and_serves_artifacts(tmp_path: Path) -> None:
    """history_keep_days prunes at start (logged with the count); files_root from conv3n.toml
    is where std/file writes and what downloads are confined to."""
    db = tmp_path / "serve.db"
    url = f"sqlite:///{db}"
    now = time.time()
    store = open_store(url)
    try:
        old = []
        for _ in range(2):
            eid = create_execution(store, workflow_name="old", started_at=now - 10 * 86400)
            update_execution(store, eid, status="success", finished_at=now - 10 * 86400)
            old.append(eid)
        recent = create_execution(store, workflow_name="recent", started_at=now - 3600)
        update_execution(store, recent, status="success", finished_at=now - 3600)
    finally:
        store.close()
    files = tmp_path / "files"
    files.mkdir()
    config = tmp_path / "conv3n.toml"
    config.write_text(f'[default]\nhistory_keep_days = 7\nfiles_root = "{files}"\n')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "CONV3N_FILES_ROOT"}
    env.update(CONV3N_DATABASE_URL=url, CONV3N_LOG_FORMAT="json", CONV3N_CONFIG=str(config))
    errlog = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conv3n_jupyter.cli", "serve", "--port", str(port),
         "--workers", "0"],
        stdout=subprocess.PIPE, stderr=errlog, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    wf = {
        "name": "w",
        "nodes": {
            "save": {
                "type": "std/file",
                "config": {"operation": "write", "path": "r.txt", "content": "kept"},
            }
        },
    }
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, (tmp_path / "stderr.log").read_text()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            deadline = time.monotonic() + 10
            while c.get(f"/api/executions/{old[0]}").status_code != 404:
                assert time.monotonic() < deadline, "old executions were not pruned"
                time.sleep(0.05)
            assert c.get(f"/api/executions/{old[1]}").status_code == 404
            assert c.get(f"/api/executions/{recent}").json()["status"] == "success"
            ran = c.post("/api/run", json={"workflow": wf}).json()
            assert ran["status"] == "success", ran
            [art] = c.get(f"/api/executions/{ran['execution_id']}/artifacts").json()["items"]
            got = c.get(f"/api/executions/{ran['execution_id']}/artifacts/{art['id']}")
            assert got.status_code == 200 and got.text == "kept"
        assert (files / "r.txt").read_text() == "kept"
        assert not (tmp_path / "r.txt").exists()
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
    pruned = [r for r in records if r["event"] == "history_pruned"]
    assert pruned and pruned[0]["count"] == 2 and pruned[0]["keep_days"] == 7.0
    assert not [r for r in records if r["level"] in ("error", "critical")]


async def test_retention_repeats_and_stops_cleanly(tmp_path: Path) -> None:
    """Passes repeat on the interval and each logs its count; stopping waits for the task."""
    import asyncio
    import io
    import logging

    from conv3n_jupyter.server.logs import configure_logging, reset_logging
    from conv3n_jupyter.server.retention import start_retention, stop_retention
    from conv3n_jupyter.settings import load_settings

    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    stream = io.StringIO()
    logger = logging.Logger("conv3n-retention-test")
    configure_logging("info", "json", stream, logger)
    try:
        none = load_settings(environ={}, config_path=None)
        assert start_retention(store, none, logger) is None  # default: nothing pruned
        settings = load_settings(environ={"CONV3N_HISTORY_KEEP_LAST": "1"}, config_path=None)
        task = start_retention(store, settings, logger, every=0.05)
        assert task is not None

        async def logged(text: str) -> None:
            deadline = time.monotonic() + 5
            while text not in stream.getvalue():
                assert time.monotonic() < deadline, stream.getvalue()
                await asyncio.sleep(0.02)

        await logged('"count": 0')  # the first pass, at once, on an empty history
        for i in range(3):
            eid = create_execution(store, workflow_name="r", started_at=time.time() + i)
            update_execution(store, eid, status="success", finished_at=time.time())
        await logged('"count": 2')  # a later pass
        await stop_retention(task)
        assert task.done()
    finally:
        reset_logging(logger)
        store.close()
    passes = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert len(passes) >= 2 and all(p["event"] == "history_pruned" for p in passes)
