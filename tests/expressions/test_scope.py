"""The roots an expression reads: every root, extra roots, ``$now``, defaults."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conv3n_jupyter.expressions import (
    Scope,
)

from .helpers import NOW, error_of, ev


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("$node.fetch.data.body.id", 7),
        ("$node.fetch.port", "default"),
        ("$node.my.status", "skipped"),
        ("$input.count", 2),
        ("$input.items[1].price", 20),
        ("$params.city", "Berlin"),
        ("$trigger.body.event", "push"),
        ("$vars.counter", 3),
        ("$secrets.token", "s3cr3t"),
        ("$env.HOME_DIR", "/home/x"),
        ("$execution.id", "ex-1"),
        ("$workflow.name", "demo"),
        ("$now", NOW),
        ("$params.min + $vars.counter", 13),
        ("$workflow.id + '/' + $execution.id", "wf-1/ex-1"),
        ("$now == timestamp('2024-05-01T12:30:00Z')", True),
    ],
)
def test_every_root_reads_its_value(scope: Scope, src: str, expected: Any) -> None:
    """Each root resolves to the scope's value, on the Python path and through CEL alike."""
    assert ev(src, scope) == expected


def test_item_and_index_come_from_extra_roots(scope: Scope) -> None:
    """``$item``/``$index`` are given per evaluation, as ``evaluate(scope, item=, index=)``."""
    assert ev("$item.price * 2", scope, item={"price": 21}) == 42
    assert ev("$index + 1", scope, item=None, index=4) == 5
    assert ev("$item", scope, item=None) is None
    assert ev("$item", scope.child(item=[1]), index=0) == [1]


def test_now_defaults_to_one_utc_instant_per_scope() -> None:
    """Without ``now``, ``$now`` is the current UTC time, fixed at first use, shared by children."""
    scope = Scope()
    first = ev("$now", scope)
    assert first.tzinfo is not None and abs(datetime.now(timezone.utc) - first) < timedelta(5)
    assert ev("$now", scope.child(item=1)) == first
    assert scope.child(index=0).now is first


def test_mapping_roots_default_to_empty_objects() -> None:
    """Unset mapping roots are empty objects, so a missing name is a clear 'no field' error."""
    err = error_of("$params.city", Scope())
    assert "no field 'city' in $params" in err.reason


def test_unknown_extra_root_is_rejected(scope: Scope) -> None:
    """A misspelt extra root (``items=``) is a TypeError, not silently ignored."""
    with pytest.raises(TypeError):
        ev("$item", scope, items=1)
    with pytest.raises(TypeError):
        scope.child(itme=1)
