"""Killing ``conv3n serve`` with SIGKILL in the middle of a run: after a restart the execution is
``crashed`` (naming the last node that finished), never stuck ``running``, and no worker of the
dead server lives on to write into the store behind the new one's back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

SLOW = {
    "conv3n": "1",
    "name": "slow-crash",
    "nodes": {
        "stamp": {"type": "std/transform", "config": {"input": {"step": 1}}},
        "wait": {"type": "std/delay", "config": {"duration": 60, "unit": "s"}},
    },
    "edges": [{"source": "stamp", "target": "wait"}],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(db: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    conv3n = Path(sys.executable).parent / "conv3n"
    proc = subprocess.Popen(
        [str(conv3n), "serve", "--port", str(port), "--workers", str(workers)],
        cwd=db.parent,
        env={**os.environ, "CONV3N_DATABASE_URL": f"sqlite:///{db}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"conv3n serve exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("conv3n serve did not answer /health within 30 s")


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["server", "process-group"])
def test_sigkill_mid_run_leaves_a_crashed_execution(tmp_path: Path, kill: str) -> None:
    db = tmp_path / "conv3n.db"
    proc, url = _serve(db, workers=1)
    try:
        started = httpx.post(f"{url}/api/run?wait=false", json={"workflow": SLOW}, timeout=10)
        assert started.status_code == 202, started.text
        eid = started.json()["execution_id"]

        def stamped() -> bool:
            row = httpx.get(f"{url}/api/executions/{eid}", timeout=5).json()
            return (
                row["status"] == "running"
                and row["nodes"].get("stamp", {}).get("status") == "success"
            )

        _until(stamped, 15, "the first node to be recorded")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the server runs its executions in worker processes"
        if kill == "server":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # Workers notice their supervisor is gone and stop: none may finish the run later.
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"workers outlived the killed server: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    proc, url = _serve(db, workers=1)
    try:
        row = httpx.get(f"{url}/api/executions/{eid}", timeout=5).json()
        assert row["status"] == "crashed", row
        assert row["error"]["node"] == "stamp"
        assert "stamp" in row["error"]["message"]
        assert row["nodes"]["stamp"]["status"] == "success"
        listed = httpx.get(f"{url}/api/executions", params={"status": "running"}, timeout=5)
        assert listed.status_code == 200 and listed.json()["items"] == []
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
