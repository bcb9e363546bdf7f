"""Crash recovery, pruning and artifacts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conv3n_jupyter.errors import NotFound, StoreError
from conv3n_jupyter.store import Store
from conv3n_jupyter.store.executions import (
    create_execution,
    read_execution,
    read_executions,
    update_execution,
    upsert_node_runs,
)
from conv3n_jupyter.store.maintenance import create_artifact, mark_crashed, prune, read_artifacts


def test_running_executions_are_marked_crashed_with_the_last_node(store: Store) -> None:
    """Only executions left running become crashed, and the error names the last finished node."""
    stuck = create_execution(store, workflow_name="demo")
    update_execution(store, stuck, last_node="step2")
    done = create_execution(store, workflow_name="demo", status="success")
    assert mark_crashed(store) == 1
    got = read_execution(store, stuck)
    assert got["status"] == "crashed" and got["finished_at"] is not None
    assert got["error"]["node"] == "step2" and "step2" in got["error"]["message"]
    assert read_execution(store, done)["status"] == "success"
    assert mark_crashed(store) == 0


def _finished(store: Store, eid: str, started: float, finished: float) -> None:
    create_execution(store, execution_id=eid, workflow_name="demo", started_at=started)
    upsert_node_runs(store, eid, [{"node_id": "a", "status": "success"}])
    update_execution(store, eid, status="success", finished_at=finished)


def test_prune_by_age_and_count_keeps_running_executions(store: Store) -> None:
    """Pruning deletes old finished executions with their node runs, never running ones."""
    now = time.time()
    _finished(store, "old", now - 3600, now - 3600)
    _finished(store, "mid", now - 60, now - 60)
    _finished(store, "new", now - 1, now - 1)
    create_execution(store, execution_id="live", workflow_name="demo", started_at=now - 7200)
    assert prune(store, older_than=600) == 1
    with pytest.raises(NotFound):
        read_execution(store, "old")
    assert prune(store, keep_last=1) == 1  # keeps "new"; "live" runs; "mid" goes
    assert {e["id"] for e in read_executions(store).items} == {"new", "live"}
    assert read_execution(store, "new")["nodes"]["a"]["status"] == "success"
    with pytest.raises(StoreError, match="older_than"):
        prune(store)


def test_artifacts_by_path_and_bytes_go_with_their_execution(store: Store, tmp_path: Path) -> None:
    """Artifacts record their size, and pruning the execution deletes them too."""
    eid = create_execution(store, workflow_name="demo", status="success")
    update_execution(store, eid, finished_at=1.0)
    file = tmp_path / "report.csv"
    file.write_text("a,b\n1,2\n")
    create_artifact(store, eid, "report.csv", path=file)
    create_artifact(store, eid, "blob", data=b"\x00\x01")
    arts = read_artifacts(store, eid)
    assert [(a["name"], a["size"]) for a in arts] == [("report.csv", 8), ("blob", 2)]
    assert arts[1]["data"] == b"\x00\x01"
    with pytest.raises(NotFound):
        create_artifact(store, "nope", "x", data=b"")
    with pytest.raises(StoreError, match=r"missing\.csv"):
        create_artifact(store, eid, "gone", path=tmp_path / "missing.csv")
    assert prune(store, older_than=0) == 1
    assert read_artifacts(store, eid) == []
