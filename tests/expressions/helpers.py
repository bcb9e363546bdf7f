"""Data and helpers shared by the expression tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import Scope, compile_expression

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
NODES = {
    "fetch": {"status": "success", "port": "default", "data": {"body": {"id": 7, "tags": ["a"]}}},
    "my-id": {"status": "success", "port": "true", "data": {"x": 1}},
    "my": {"status": "skipped", "port": "default", "data": None},
}
IDS = frozenset(NODES)


def full_scope() -> Scope:
    """A scope with every root set."""
    return Scope(
        nodes=NODES,
        input={"items": [{"price": 5, "qty": 2}, {"price": 20, "qty": 0}], "count": 2},
        params={"city": "Berlin", "min": 10},
        trigger={"body": {"event": "push"}, "method": "POST"},
        vars={"counter": 3},
        secrets={"token": "s3cr3t"},
        env={"HOME_DIR": "/home/x"},
        execution={"id": "ex-1"},
        workflow={"id": "wf-1", "name": "demo"},
        now=NOW,
    )


def ev(src: str, scope: Scope, **extra: Any) -> Any:
    return compile_expression(src, node_ids=IDS).evaluate(scope, **extra)


def error_of(src: str, scope: Scope | None = None, **extra: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        expr = compile_expression(src, node_ids=IDS)
        expr.evaluate(scope or Scope(), **extra)
    assert "_c3_" not in str(info.value)
    return info.value
