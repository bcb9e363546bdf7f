"""Static paths evaluated in Python: when they apply, that they agree with CEL, their errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    Scope,
    compile_expression,
    to_json_value,
)

from ..strategies import (
    json_values,
    path_expressions,
    step_text,
)
from .helpers import IDS, error_of, ev


@pytest.mark.parametrize(
    "src",
    [
        "$input.items",
        "$node.fetch.data.body.id",
        '$node["my-id"].data',
        "$params.city",
        "$item.price",
        "$input.items[0]['price']",
        " $input . count ",
    ],
)
def test_pure_paths_take_the_fast_path(src: str) -> None:
    """A root followed only by field and index steps is evaluated without CEL."""
    assert compile_expression(src, node_ids=IDS).simple


@pytest.mark.parametrize("src", ["$input.count + 1", "($input.count)", "$input.items.size()"])
def test_other_expressions_use_cel(src: str) -> None:
    assert not compile_expression(src).simple


def test_fast_path_returns_the_value_itself(scope: Scope) -> None:
    """The fast path returns the scope's object (no copy), so big values cost nothing."""
    assert ev("$input.items", scope) is scope.input["items"]


@settings(max_examples=300)
@given(st.data(), json_values)
def test_fast_path_equals_cel(data: st.DataObject, value: Any) -> None:
    """For random paths into random JSON, the Python path and CEL agree: same value or both fail."""
    src, root, steps = data.draw(path_expressions(value))
    scope = Scope().child(**{root: value})
    fast = compile_expression(src)
    assert fast.simple
    # The same path applied by CEL to the whole root (a list literal defeats the fast paths).
    slow = compile_expression(f"[${root}][0]" + "".join(step_text(s, False) for s in steps))
    assert not slow.simple
    try:
        expected = slow.evaluate(scope)
    except ExpressionError:
        with pytest.raises(ExpressionError):
            fast.evaluate(scope)
    else:
        assert to_json_value(fast.evaluate(scope)) == expected


@given(st.data(), json_values)
def test_flattened_paths_equal_cel(data: st.DataObject, value: Any) -> None:
    """Paths inside bigger expressions (passed to CEL as separate values) give CEL's result."""
    src, root, steps = data.draw(path_expressions(value))
    scope = Scope().child(**{root: value})
    whole = f"[${root}][0]" + "".join(step_text(s, False) for s in steps)
    results = []
    for text in (f"[{src}, {src}][1]", f"[{whole}, {whole}][1]"):
        try:
            results.append(("ok", compile_expression(text).evaluate(scope)))
        except ExpressionError:
            results.append(("error", None))
    assert results[0] == results[1]


def test_path_errors_say_what_is_missing(scope: Scope) -> None:
    """Missing fields list the available ones; wrong types and bad indexes are named."""
    err = error_of("$input.itemz", scope)
    assert err.reason == "no field 'itemz' in $input (available: items, count)"
    assert err.expression == "$input.itemz"
    assert (
        "no field 'cost' in $input.items[0] (available: price, qty)"
        in error_of("$input.items[0].cost * 2", scope).reason
    )
    assert (
        "index 9 out of range for $input.items (a list of 2)"
        in error_of("$input.items[9]", scope).reason
    )
    assert "$input.count is a number" in error_of("$input.count.x", scope).reason
    assert "$input.items is a list" in error_of("$input.items.x", scope).reason


def test_guarded_missing_field_is_not_an_error(scope: Scope) -> None:
    """A path that would fail but sits in an unevaluated branch follows CEL's semantics."""
    assert ev("has($input.nope) && $input.nope > 1", scope) is False
    assert ev("'nope' in $input.items[0] ? $input.items[0].nope : -1", scope) == -1
    assert ev("$input.count == 2 || $input.nope", scope) is True


def test_no_attribute_access_into_python_objects() -> None:
    """Fields are looked up as keys of plain data, never as attributes of Python objects."""

    class Thing:
        x = 1

    err = error_of("$input.x", Scope(input=Thing()))
    assert "not an object or list" in err.reason
    err = error_of("$input.x + 1", Scope(input=Thing()))
    assert "not plain JSON" in err.reason
    assert "no field '__class__'" in error_of("$input.__class__", Scope(input={})).reason
