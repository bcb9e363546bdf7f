"""Queued executions: claimed once, cancelled before they start, resumed after a restart,
and the stored node runs a retry reuses."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conv3n_jupyter.store import Store
from conv3n_jupyter.store.executions import (
    cancel_queued,
    claim_execution,
    create_execution,
    previous_results,
    read_execution,
    read_queued,
    upsert_node_runs,
)
from conv3n_jupyter.store.maintenance import mark_crashed
from conv3n_jupyter.store.workflows import create_workflow, update_workflow

HELLO = json.loads(Path("templates/hello.conv3n.json").read_text())


def test_a_queued_execution_is_claimed_by_exactly_one_worker(store: Store) -> None:
    """Eight concurrent claims of one queued execution: one wins, the rest get None."""
    eid = create_execution(store, workflow_name="hello", status="queued", definition=HELLO)
    assert read_queued(store) == [eid]
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda i: claim_execution(store, eid, worker=f"w{i}"), range(8)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    assert won[0]["definition"] == HELLO and won[0]["status"] == "running"
    assert read_execution(store, eid)["worker"] == won[0]["worker"]
    assert read_queued(store) == []


def test_a_claim_of_a_saved_workflow_reads_the_queued_version(store: Store) -> None:
    """The execution runs the version it was queued with, not a newer save."""
    wid = create_workflow(store, HELLO)["id"]
    changed = {**HELLO, "name": "hello-v2"}
    update_workflow(store, wid, changed)
    eid = create_execution(
        store, workflow_name="hello", workflow_id=wid, workflow_version=1, status="queued"
    )
    row = claim_execution(store, eid, worker="w")
    assert row is not None and row["definition"]["name"] == HELLO["name"]


def test_cancel_queued_only_cancels_what_has_not_started(store: Store) -> None:
    queued = create_execution(store, workflow_name="a", status="queued", definition=HELLO)
    started = create_execution(store, workflow_name="b", status="queued", definition=HELLO)
    assert claim_execution(store, started, worker="w") is not None
    assert cancel_queued(store, queued, reason="user asked") is True
    assert cancel_queued(store, started) is False
    row = read_execution(store, queued)
    assert row["status"] == "cancelled" and row["error"]["message"] == "user asked"
    assert claim_execution(store, queued, worker="w") is None  # a worker never runs it now


def test_mark_crashed_by_id_leaves_other_running_executions(store: Store) -> None:
    a = create_execution(store, workflow_name="a")
    b = create_execution(store, workflow_name="b")
    upsert_node_runs(store, a, [{"node_id": "n1", "status": "success"}])
    from conv3n_jupyter.store.executions import update_execution

    update_execution(store, a, last_node="n1")
    assert mark_crashed(store, reason="worker 1 exited with SIGSEGV", execution_ids=[a]) == 1
    assert mark_crashed(store, execution_ids=[]) == 0
    crashed = read_execution(store, a)
    assert crashed["status"] == "crashed"
    assert "SIGSEGV" in crashed["error"]["message"] and crashed["error"]["node"] == "n1"
    assert read_execution(store, b)["status"] == "running"


def test_previous_results_keep_only_whole_successful_outputs(store: Store) -> None:
    """A retry reuses successful nodes; failed ones and truncated outputs run again."""
    small = Store(store.engine, max_output_bytes=64)
    eid = create_execution(small, workflow_name="w")
    upsert_node_runs(
        small,
        eid,
        [
            {"node_id": "a", "status": "success", "port": "main", "output": {"x": 1}},
            {"node_id": "big", "status": "success", "output": ["y" * 200]},
            {"node_id": "b", "status": "error", "error": {"message": "boom"}},
        ],
    )
    prev = previous_results(small, eid)
    assert prev["execution_id"] == eid
    assert set(prev["nodes"]) == {"a"}
    assert prev["nodes"]["a"]["data"] == {"x": 1} and prev["nodes"]["a"]["status"] == "success"
