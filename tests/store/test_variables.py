"""Variables with workflow and global scope."""

from __future__ import annotations

import pytest

from conv3n_jupyter.errors import NotFound, StoreError
from conv3n_jupyter.store import Store
from conv3n_jupyter.store.variables import (
    delete_variable,
    read_variable,
    read_variables,
    set_variable,
)


def test_scopes_are_separate_and_set_replaces(store: Store) -> None:
    """A key set globally and for two workflows holds three values; setting again replaces."""
    set_variable(store, "n", 1)
    set_variable(store, "n", {"deep": [1]}, scope="workflow", workflow_id="w1")
    set_variable(store, "n", 3, scope="workflow", workflow_id="w2")
    set_variable(store, "n", 2)
    assert read_variable(store, "n") == 2
    assert read_variable(store, "n", scope="workflow", workflow_id="w1") == {"deep": [1]}
    assert read_variables(store, scope="workflow", workflow_id="w2") == {"n": 3}


def test_delete_and_missing(store: Store) -> None:
    """Deleting reports whether the variable existed; reading it afterwards is NotFound."""
    set_variable(store, "k", "v")
    assert delete_variable(store, "k") is True
    assert delete_variable(store, "k") is False
    with pytest.raises(NotFound, match="'k'"):
        read_variable(store, "k")


def test_bad_scope_is_refused(store: Store) -> None:
    """An unknown scope or a workflow scope without a workflow id is a StoreError."""
    with pytest.raises(StoreError, match="unknown variable scope"):
        set_variable(store, "k", 1, scope="execution")
    with pytest.raises(StoreError, match="workflow_id"):
        read_variable(store, "k", scope="workflow")
