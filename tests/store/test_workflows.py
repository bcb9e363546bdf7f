"""Saved workflows and their versions."""

from __future__ import annotations

import pytest

from conv3n_jupyter.errors import AlreadyExists, NotFound
from conv3n_jupyter.store import Store
from conv3n_jupyter.store.workflows import (
    create_workflow,
    delete_workflow,
    read_workflow,
    read_workflow_versions,
    read_workflows,
    restore_workflow_version,
    update_workflow,
)


def _wf(name: str, value: int) -> dict[str, object]:
    return {
        "conv3n": "1",
        "name": name,
        "nodes": {"a": {"type": "std/noop", "config": {"value": value}}},
    }


def test_create_read_update_and_history(store: Store) -> None:
    """Saving keeps every version: the current one is the newest, old ones stay readable."""
    created = create_workflow(store, _wf("first", 1), workflow_id="w1")
    assert created["version"] == 1
    updated = update_workflow(store, "w1", _wf("second", 2))
    assert updated["version"] == 2
    current = read_workflow(store, "w1")
    assert (
        current["name"] == "second" and current["definition"]["nodes"]["a"]["config"]["value"] == 2
    )
    assert read_workflow(store, "w1", version=1)["definition"]["name"] == "first"
    assert [v["version"] for v in read_workflow_versions(store, "w1")] == [1, 2]
    assert [w["id"] for w in read_workflows(store)] == ["w1"]


def test_restore_makes_a_new_version(store: Store) -> None:
    """Restoring version 1 makes its definition current as version 3, keeping version 2."""
    create_workflow(store, _wf("first", 1), workflow_id="w1")
    update_workflow(store, "w1", _wf("second", 2))
    restored = restore_workflow_version(store, "w1", 1)
    assert restored["version"] == 3
    assert read_workflow(store, "w1")["definition"] == _wf("first", 1)
    assert len(read_workflow_versions(store, "w1")) == 3


def test_duplicate_and_missing_ids_raise_the_store_errors(store: Store) -> None:
    """A second create with the same id is AlreadyExists; unknown ids and versions are NotFound."""
    create_workflow(store, _wf("first", 1), workflow_id="w1")
    with pytest.raises(AlreadyExists, match="w1"):
        create_workflow(store, _wf("again", 1), workflow_id="w1")
    with pytest.raises(NotFound, match="nope"):
        read_workflow(store, "nope")
    with pytest.raises(NotFound, match="version 9"):
        read_workflow(store, "w1", version=9)
    with pytest.raises(NotFound):
        update_workflow(store, "nope", _wf("x", 1))


def test_delete_removes_workflow_and_versions(store: Store) -> None:
    """After delete the workflow and its versions are gone, and deleting again is NotFound."""
    create_workflow(store, _wf("first", 1), workflow_id="w1")
    delete_workflow(store, "w1")
    with pytest.raises(NotFound):
        read_workflow_versions(store, "w1")
    with pytest.raises(NotFound):
        delete_workflow(store, "w1")


def test_id_comes_from_the_definition_or_is_generated(store: Store) -> None:
    """Without an explicit id the definition's ``id`` is used, else a fresh one."""
    assert create_workflow(store, {**_wf("a", 1), "id": "from-def"})["id"] == "from-def"
    generated = create_workflow(store, _wf("b", 1))["id"]
    assert len(generated) == 32 and read_workflow(store, generated)["name"] == "b"
