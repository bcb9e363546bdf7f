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
from conv3n_jupyter.store.maintenance import (
    create_artifact,
    forget_artifacts,
    list_artifacts,
    mark_crashed,
    prune,
    read_artifact,
    read_artifacts,
    record_artifact,
)


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


def test_prune_with_both_limits_applies_each_on_its_own(store: Store) -> None:
    """Too old or beyond the newest N: either is enough to go."""
    now = time.time()
    _finished(store, "old", now + 10, now - 3600)  # the newest start, but finished long ago
    for i in range(3):
        _finished(store, f"r{i}", now + i, now + i)
    # "old" goes by age although it is among the newest 2; "r0" and "r1" go by count.
    assert prune(store, older_than=600, keep_last=2) == 3
    assert [e["id"] for e in read_executions(store).items] == ["r2"]


def test_record_artifact_keeps_one_row_per_file(store: Store, tmp_path: Path) -> None:
    """Written twice: one artifact with the latest size and node, the first created_at."""
    eid = create_execution(store, workflow_name="demo")
    file = tmp_path / "out.txt"
    file.write_text("one")
    first = record_artifact(store, eid, "out.txt", file, node_id="a")
    created = read_artifact(store, eid, first)["created_at"]
    file.write_text("three")
    assert record_artifact(store, eid, "out.txt", file, node_id="b") == first
    other = record_artifact(store, eid, "other.txt", file)
    rows = list_artifacts(store, eid)
    assert [(r["id"], r["name"], r["size"], r["node_id"]) for r in rows] == [
        (first, "out.txt", 5, "b"),
        (other, "other.txt", 5, None),
    ]
    assert rows[0]["created_at"] == created and "data" not in rows[0]
    assert read_artifact(store, eid, first)["path"] == str(file)
    with pytest.raises(NotFound, match="artifact"):
        read_artifact(store, eid, other + 100)
    with pytest.raises(NotFound, match="nope"):
        list_artifacts(store, "nope")
    with pytest.raises(NotFound):
        record_artifact(store, "nope", "out.txt", file)
    with pytest.raises(StoreError, match=r"missing\.txt"):
        record_artifact(store, eid, "m", tmp_path / "missing.txt")


def test_forget_artifacts_drops_a_name_and_its_folder_only(store: Store, tmp_path: Path) -> None:
    """Wildcard characters in names are literal: 'a_b/' does not match 'axb/'."""
    eid = create_execution(store, workflow_name="demo")
    file = tmp_path / "f"
    file.write_text("x")
    for name in ("a_b", "a_b/one", "a_b/deep/two", "axb/three", "a_bc", "keep"):
        record_artifact(store, eid, name, file)
    assert forget_artifacts(store, eid, "a_b") == 3
    assert [r["name"] for r in list_artifacts(store, eid)] == ["axb/three", "a_bc", "keep"]
