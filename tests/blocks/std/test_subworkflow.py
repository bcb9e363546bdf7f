"""Tests of ``std/subworkflow``: by path, inline and saved id; params, failures, depth, store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.blocks.std.subworkflow import MAX_DEPTH, SubWorkflow
from conv3n_jupyter.engine.executor import run
from conv3n_jupyter.engine.runtime import Runtime
from conv3n_jupyter.errors import WorkflowValidationError
from conv3n_jupyter.model import load

CHILD = {
    "name": "double",
    "params": {"n": {"type": "integer"}},
    "nodes": {"t": {"type": "std/transform", "config": {"input": "{{ $params.n * 2 }}"}}},
}
FAILING = {
    "name": "broken",
    "nodes": {
        "ok": {"type": "std/noop"},
        "boom": {"type": "std/get_var", "config": {"key": "missing"}},
    },
    "edges": [{"source": "ok", "target": "boom"}],
}


def _write(path: Path, wf: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wf))
    return path


def _parent(config: dict[str, Any], name: str = "parent") -> dict[str, Any]:
    return {"name": name, "nodes": {"sub": {"type": "std/subworkflow", "config": config}}}


async def test_path_relative_to_the_parent_file_with_templated_params(tmp_path: Path) -> None:
    """A child file next to the parent runs with rendered params; its output is the node's."""
    _write(tmp_path / "lib" / "double.conv3n.json", CHILD)
    parent = _write(
        tmp_path / "parent.conv3n.json",
        _parent({"path": "lib/double.conv3n.json", "params": {"n": "{{ 20 + 1 }}"}}),
    )
    result = await run(parent)
    assert result["status"] == "success", result.get("error")
    assert result["output"] == 42


async def test_workflow_string_ending_in_json_is_a_path(tmp_path: Path) -> None:
    """`workflow: "x.conv3n.json"` is read as a path, as the spec's `workflow` key allows."""
    _write(tmp_path / "double.conv3n.json", CHILD)
    parent = _write(
        tmp_path / "p.conv3n.json", _parent({"workflow": "double.conv3n.json", "params": {"n": 4}})
    )
    assert (await run(parent))["output"] == 8


async def test_inline_workflow_keeps_its_own_templates(tmp_path: Path) -> None:
    """An inline child's `{{ $params }}` are its own, not rendered in the parent's scope."""
    parent = {
        "name": "p",
        "params": {"n": {"type": "integer", "default": 5}},
        "nodes": {"sub": {"type": "std/subworkflow", "config": {"workflow": CHILD,
                                                                 "params": {"n": "{{ $params.n }}"}}}},
    }  # fmt: skip
    result = await run(parent)
    assert result["output"] == 10


@pytest.mark.parametrize(
    "path", ["../outside.conv3n.json", "/etc/passwd", "sub/../../outside.conv3n.json"]
)
async def test_paths_outside_the_parent_folder_are_refused(tmp_path: Path, path: str) -> None:
    """`..` escapes and absolute paths fail the node without reading the file."""
    _write(tmp_path / "outside.conv3n.json", CHILD)
    parent = _write(tmp_path / "inner" / "p.conv3n.json", _parent({"path": path}))
    result = await run(parent)
    assert result["status"] == "error"
    assert result["error"]["node"] == "sub"
    assert "files root" in result["error"]["message"] or "absolute" in result["error"]["message"]


async def test_failing_child_fails_the_node_naming_child_execution_and_node(
    tmp_path: Path,
) -> None:
    """The parent's error names the child's execution id, failing node and reason."""
    _write(tmp_path / "broken.conv3n.json", FAILING)
    parent = _write(tmp_path / "p.conv3n.json", _parent({"path": "broken.conv3n.json"}))
    result = await run(parent)
    assert result["status"] == "error"
    error = result["error"]
    details = error["details"]
    assert error["node"] == "sub"
    assert details["node"] == "boom"
    assert len(details["execution_id"]) == 32
    assert f"(execution {details['execution_id']}) error at node 'boom'" in error["message"]
    assert "'missing' is not set" in error["message"]


async def test_a_workflow_calling_itself_stops_at_the_depth_limit(tmp_path: Path) -> None:
    """Self-recursion ends with a clear error at MAX_DEPTH instead of running forever."""
    me = _write(tmp_path / "me.conv3n.json", _parent({"path": "me.conv3n.json"}, name="me"))
    result = await run(me)
    assert result["status"] == "error"
    message = result["error"]["message"]
    assert f"deeper than {MAX_DEPTH} levels" in message
    assert "innermost" in message
    assert len(json.dumps(result)) < 5000  # no error nested once per level


async def test_wait_false_returns_at_once_and_the_child_still_finishes(tmp_path: Path) -> None:
    """With wait false the node emits the child id; the runtime waits for the child on close."""
    (tmp_path / "files").mkdir()
    writer = {
        "name": "writer",
        "nodes": {
            "pause": {"type": "std/delay", "config": {"duration": 100}},
            "w": {"type": "std/file", "config": {"path": "done.txt", "operation": "write",
                                                  "content": "ok"}},
        },
        "edges": [{"source": "pause", "target": "w"}],
    }  # fmt: skip
    parent = _parent({"workflow": writer, "wait": False})
    async with Runtime(files_root=tmp_path / "files") as runtime:
        result = await run(parent, runtime=runtime)
        assert result["status"] == "success"
        assert result["output"]["status"] == "started"
        assert not (tmp_path / "files" / "done.txt").exists()
    assert (tmp_path / "files" / "done.txt").read_text() == "ok"


async def test_saved_id_needs_a_store() -> None:
    """A saved workflow id without a store fails with how to get one."""
    result = await run(_parent({"workflow_id": "double"}))
    assert result["status"] == "error"
    assert "needs a store" in result["error"]["message"]
    assert "conv3n run --store" in result["error"]["message"]


def test_validation_wants_exactly_one_source() -> None:
    """Zero or two workflow sources, or a version without an id, are load-time problems."""
    for config, words in [
        ({}, "exactly one"),
        ({"path": "a.json", "workflow_id": "x"}, "exactly one"),
        ({"path": "a.json", "version": 2}, "'version'"),
    ]:
        with pytest.raises(WorkflowValidationError, match=words):
            load(_parent(config))
    assert SubWorkflow.check({"workflow_id": "x", "version": 1}, "nodes.sub.config") == []


# -- with a store ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    from conv3n_jupyter.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'conv3n.db'}")
    yield store
    store.close()


async def test_saved_workflow_current_or_pinned_version(sqlite_store: Any) -> None:
    """By id the current version runs; `version` pins an older one."""
    from conv3n_jupyter.store.workflows import create_workflow, update_workflow

    create_workflow(sqlite_store, CHILD, workflow_id="double")
    triple = {**CHILD, "nodes": {"t": {"type": "std/transform",
                                       "config": {"input": "{{ $params.n * 3 }}"}}}}  # fmt: skip
    update_workflow(sqlite_store, "double", triple)
    async with Runtime(store=sqlite_store) as runtime:
        current = await run(_parent({"workflow_id": "double", "params": {"n": 2}}), runtime=runtime)
        pinned = await run(
            _parent({"workflow_id": "double", "version": 1, "params": {"n": 2}}), runtime=runtime
        )
        missing = await run(_parent({"workflow_id": "nope"}), runtime=runtime)
    assert current["output"] == 6
    assert pinned["output"] == 4
    assert missing["status"] == "error"
    assert "workflow 'nope' not found" in missing["error"]["message"]


async def test_children_of_a_recorded_run_are_recorded_with_parent_id(
    tmp_path: Path, sqlite_store: Any
) -> None:
    """A recorded parent's child gets its own execution row linked by parent_id, even failed."""
    from conv3n_jupyter.store import record_run
    from conv3n_jupyter.store.executions import read_execution, read_executions

    _write(tmp_path / "double.conv3n.json", CHILD)
    _write(tmp_path / "broken.conv3n.json", FAILING)
    parent = _write(
        tmp_path / "p.conv3n.json",
        {
            "name": "parent",
            "nodes": {
                "a": {"type": "std/subworkflow",
                      "config": {"path": "double.conv3n.json", "params": {"n": 1}}},
                "b": {"type": "std/subworkflow", "config": {"path": "broken.conv3n.json"}},
            },
            "edges": [{"source": "a", "target": "b"}],
        },
    )  # fmt: skip
    async with Runtime(store=sqlite_store) as runtime:
        result = await record_run(sqlite_store, parent, runtime=runtime)
    assert result["status"] == "error"
    rows = read_executions(sqlite_store).items
    children = {r["workflow_name"]: r for r in rows if r["parent_id"] == result["execution_id"]}
    assert set(children) == {"double", "broken"}
    assert children["double"]["status"] == "success"
    assert children["double"]["output"] == 2
    assert children["broken"]["status"] == "error"
    assert result["error"]["details"]["execution_id"] == children["broken"]["id"]
    stored_child = read_execution(sqlite_store, children["broken"]["id"])
    assert stored_child["nodes"]["boom"]["status"] == "error"
