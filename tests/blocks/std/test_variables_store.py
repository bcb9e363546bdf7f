"""``std/set_var``/``std/get_var`` in workflow and global scope, kept in a real store.

Each test runs on a temp SQLite file and on the machine's PostgreSQL (skipped when it is not
reachable, except under CI). The restart case (a second process) is in tests/test_cli_store.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.engine.executor import run
from conv3n_jupyter.engine.runtime import Runtime
from conv3n_jupyter.errors import NotFound
from conv3n_jupyter.store import Store, open_store, record_run
from conv3n_jupyter.store.variables import read_variable, set_variable
from tests.store.conftest import pg_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh migrated store per test on each backend."""
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'vars.db'}")
        yield opened
        opened.close()
        return
    with pg_schema("conv3n_vars") as url:
        opened = open_store(url)
        yield opened
        opened.close()


def counter(scope: str = "workflow", **extra: Any) -> dict[str, Any]:
    """Reads `n` (default 0), stores n + 1, and emits `$vars.n` seen downstream."""
    return {
        "name": "counter",
        **extra,
        "nodes": {
            "get": {"type": "std/get_var", "config": {"key": "n", "scope": scope, "default": 0}},
            "set": {"type": "std/set_var",
                    "config": {"key": "n", "scope": scope, "value": "{{ $input + 1 }}"}},
            "seen": {"type": "std/transform", "config": {"input": "{{ $vars.n }}"}},
        },
        "edges": [{"source": "get", "target": "set"}, {"source": "set", "target": "seen"}],
    }  # fmt: skip


async def _run(store: Store, wf: dict[str, Any]) -> Any:
    async with Runtime(store=store) as runtime:
        result = await run(wf, runtime=runtime)
    assert result["status"] == "success", result.get("error")
    return result["output"]


async def test_workflow_scope_counts_across_runs_keyed_by_the_id_field(store: Store) -> None:
    """Three runs of a workflow with an `id` count 1, 2, 3; the value sits under that id."""
    wf = counter(id="wf-counter")
    assert [await _run(store, wf) for _ in range(3)] == [1, 2, 3]
    assert read_variable(store, "n", scope="workflow", workflow_id="wf-counter") == 3


async def test_workflow_scope_falls_back_to_the_name_and_isolates_workflows(store: Store) -> None:
    """Without an id the name keys the variables; another workflow has its own counter."""
    assert await _run(store, counter()) == 1
    assert await _run(store, counter()) == 2
    other = {**counter(), "name": "other"}
    assert await _run(store, other) == 1
    assert read_variable(store, "n", scope="workflow", workflow_id="counter") == 2


async def test_saved_workflow_id_keys_the_variables(store: Store) -> None:
    """A run recorded under a saved workflow id keeps its variables under that id."""
    wf = counter(id="file-id")
    for _ in range(2):
        async with Runtime(store=store) as runtime:
            result = await record_run(store, wf, workflow_id="saved-id", runtime=runtime)
        assert result["status"] == "success", result.get("error")
    assert read_variable(store, "n", scope="workflow", workflow_id="saved-id") == 2


async def test_global_scope_is_shared_by_every_workflow(store: Store) -> None:
    """A global variable set by one workflow is read by another; get_var also fills $vars."""
    set_variable(store, "n", 41, scope="global")
    assert await _run(store, counter("global")) == 42
    reader = {
        "name": "reader",
        "nodes": {
            "get": {"type": "std/get_var", "config": {"key": "n", "scope": "global"}},
            "out": {"type": "std/transform", "config": {"input": "{{ $vars.n * 10 }}"}},
        },
        "edges": [{"source": "get", "target": "out"}],
    }
    assert await _run(store, reader) == 420


async def test_missing_persistent_variable_without_default_names_the_workflow(
    store: Store,
) -> None:
    """An unset workflow variable and no default fails naming key and workflow."""
    wf = {"name": "w", "nodes": {"g": {"type": "std/get_var",
                                       "config": {"key": "nope", "scope": "workflow"}}}}  # fmt: skip
    async with Runtime(store=store) as runtime:
        result = await run(wf, runtime=runtime)
    assert result["status"] == "error"
    assert result["error"]["message"] == (
        "variable 'nope' is not set in workflow 'w' and the node has no 'default'"
    )


async def test_json_values_round_trip(store: Store) -> None:
    """Objects, lists, null and unicode come back as they were stored."""
    value = {"a": [1, 2.5, None, True], "b": "héllo ✓", "c": {}}
    setter = {"name": "s", "nodes": {"s": {"type": "std/set_var",
                                           "config": {"key": "v", "scope": "global",
                                                      "value": value}}}}  # fmt: skip
    await _run(store, setter)
    getter = {"name": "g", "nodes": {"g": {"type": "std/get_var",
                                           "config": {"key": "v", "scope": "global"}}}}  # fmt: skip
    assert await _run(store, getter) == value


async def test_execution_scope_does_not_touch_the_store(store: Store) -> None:
    """Execution scope stays in $vars only, even when a store is there."""
    assert await _run(store, counter("execution")) == 1
    assert await _run(store, counter("execution")) == 1
    with pytest.raises(NotFound, match="not set"):
        read_variable(store, "n", scope="global")
