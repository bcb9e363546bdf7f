"""Executions, node runs, filters, cursor pagination and truncation of large values."""

from __future__ import annotations

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


def test_execution_round_trip_with_node_runs(store: Store) -> None:
    """An execution reads back with its fields and one row per node, the last upsert winning."""
    eid = create_execution(
        store, workflow_name="demo", workflow_id="w1", workflow_version=2, params={"n": 1}
    )
    upsert_node_runs(store, eid, [{"node_id": "a", "status": "running"}])
    upsert_node_runs(
        store,
        eid,
        [
            {"node_id": "a", "status": "success", "port": "default", "output": {"x": 1}},
            {"node_id": "b", "status": "error", "error": {"message": "boom"}, "attempt": 3},
        ],
    )
    update_execution(store, eid, status="error", finished_at=1.0, output=[1, 2])
    got = read_execution(store, eid)
    assert (got["status"], got["workflow_version"], got["params"], got["output"]) == (
        "error",
        2,
        {"n": 1},
        [1, 2],
    )
    assert got["nodes"]["a"]["status"] == "success" and got["nodes"]["a"]["output"] == {"x": 1}
    assert got["nodes"]["b"]["attempt"] == 3 and got["nodes"]["b"]["error"] == {"message": "boom"}


def test_unknown_execution_and_field_are_refused(store: Store) -> None:
    """Updating or reading a missing execution is NotFound; an unknown field is a StoreError."""
    with pytest.raises(NotFound, match="nope"):
        read_execution(store, "nope")
    with pytest.raises(NotFound):
        update_execution(store, "nope", status="success")
    eid = create_execution(store, workflow_name="demo")
    with pytest.raises(StoreError, match="colour"):
        update_execution(store, eid, colour="red")


def test_filters_and_cursor_pagination(store: Store) -> None:
    """Filtering by workflow, status and time works, and cursor pages cover every row once."""
    for i in range(7):
        create_execution(
            store,
            execution_id=f"e{i}",
            workflow_name="demo",
            workflow_id="w1" if i % 2 else "w2",
            status="success" if i < 5 else "error",
            started_at=1000.0 + (i // 2),  # ties on started_at exercise the id tie-break
        )
    assert {e["id"] for e in read_executions(store, workflow_id="w1").items} == {"e1", "e3", "e5"}
    assert {e["id"] for e in read_executions(store, status="error").items} == {"e5", "e6"}
    assert {e["id"] for e in read_executions(store, since=1002.0).items} == {"e4", "e5", "e6"}
    seen: list[str] = []
    cursor = None
    while True:
        page = read_executions(store, limit=3, cursor=cursor)
        seen += [e["id"] for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["e6", "e5", "e4", "e3", "e2", "e1", "e0"]
    with pytest.raises(StoreError, match="cursor"):
        read_executions(store, cursor="garbage!")


def test_large_output_is_truncated_with_a_marker(store: Store) -> None:
    """An output above the byte limit is stored as a marker with its size and a preview."""
    store.max_output_bytes = 1000
    eid = create_execution(store, workflow_name="demo")
    big = {"text": "x" * 5000}
    upsert_node_runs(store, eid, [{"node_id": "a", "status": "success", "output": big}])
    update_execution(store, eid, output={"small": True})
    got = read_execution(store, eid)
    marker = got["nodes"]["a"]["output"]
    assert marker["truncated"] is True and marker["bytes"] > 5000
    assert marker["preview"].startswith('{"text": "xxx')
    assert got["output"] == {"small": True}
