"""Results as JSON and as template text, and the key order of maps in results."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings

from conv3n_jupyter.expressions import (
    Scope,
    compile_expression,
    compile_template,
    to_json_value,
    to_text,
)

from ..strategies import record_lists


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("true", "true"),
        ("false", "false"),
        ("null", "null"),
        ("1.5", "1.5"),
        ("42", "42"),
        ("'x'", "x"),
        ("[1, 'a', null]", '[1, "a", null]'),
        ("{'a': {'b': true}}", '{"a": {"b": true}}'),
        ("timestamp('2024-05-01T12:30:00Z')", "2024-05-01T12:30:00Z"),
        ("duration('1.5s')", "1.5s"),
        ("duration('90m')", "5400s"),
        ("b'hi'", "aGk="),
        ("'ünï'", "ünï"),
    ],
)
def test_text_conversion_rules(expr: str, text: str) -> None:
    """Spliced values: JSON for objects/lists, true/false/null, ISO 8601, CEL duration text."""
    assert compile_template("<{{ " + expr + " }}>").render(Scope()) == f"<{text}>"


def test_to_json_value_converts_cel_results() -> None:
    """Timestamps, durations and bytes become JSON text; map keys become strings."""
    value = {
        "t": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "d": timedelta(seconds=-1.5),
        "b": b"\x00",
        1: (1, 2),
    }
    assert to_json_value(value) == {
        "t": "2024-01-01T00:00:00Z",
        "d": "-1.5s",
        "b": "AA==",
        "1": [1, 2],
    }
    stamp = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert to_text({"a": stamp}) == '{"a": "2024-01-01T00:00:00Z"}'
    assert compile_expression("timestamp('2024-01-01T00:00:00Z')").evaluate(Scope()) == (
        "2024-01-01T00:00:00Z"
    )


# -- key order -----------------------------------------------------------------------------------


def _orders(value: Any, into: dict[frozenset[str], set[tuple[str, ...]]]) -> Any:
    """Every map's key order in ``value``, by key set."""
    if isinstance(value, dict):
        into.setdefault(frozenset(value), set()).add(tuple(value))
        for v in value.values():
            _orders(v, into)
    elif isinstance(value, list):
        for v in value:
            _orders(v, into)
    return into


def _all_keys(value: Any) -> list[Any]:
    """The key lists of every map in ``value``, depth first."""
    if isinstance(value, dict):
        return [list(value)] + [k for v in value.values() for k in _all_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []


@pytest.mark.parametrize(
    "src",
    [
        '{"a": 1, "b": 2, "c": 3, "d": 4}',
        '{"b": 1, "a": 2}',
        "$input.items.filter(x, x.ok)",
        '$input.items.map(x, {"name": x.name, "total": x.price * 2, "id": x.id})',
        '{"z": {"y": 1, "x": [{"w": 1, "v": 2}]}, "a": $input.items[0]}',
        '{$params.k: 1, "b": 2, "a": 3}',
        'json.decode("{\\"b\\": 1, \\"a\\": 2, \\"c\\": 3}")',
    ],
)
def test_result_key_order_is_the_same_every_time(src: str) -> None:
    """The engine returns maps in a random order; 20 evaluations give identical key lists."""
    items = [{"name": f"n{i}", "price": i, "ok": i % 2 == 0, "id": i, "z": 0} for i in range(6)]
    scope = Scope(input={"items": items}, params={"k": "m"})
    expr = compile_expression(src)
    first = _all_keys(expr.evaluate(scope))
    assert all(_all_keys(expr.evaluate(scope)) == first for _ in range(20))


def test_literal_maps_keep_the_order_written() -> None:
    """A map literal whose keys are all string literals keeps its order, nested or in a macro."""
    assert list(compile_expression('{"b": 1, "a": 2}').evaluate(Scope())) == ["b", "a"]
    nested = compile_expression('{"z": {"y": 1, "x": 2}, "a": [{"d": 1, "c": 2}]}').evaluate(
        Scope()
    )
    assert _all_keys(nested) == [["z", "a"], ["y", "x"], ["d", "c"]]
    mapped = compile_expression("[1, 2].map(i, {'total': i, 'name': 'x'})").evaluate(Scope())
    assert _all_keys(mapped) == [["total", "name"], ["total", "name"]]
    tpl = compile_template("got {{ {'b': 1, 'a': [true]} }}")
    assert tpl.render(Scope()) == 'got {"b": 1, "a": [true]}'  # type: ignore[union-attr]


def test_maps_passed_through_keep_their_input_order() -> None:
    """Items a filter lets through (and maps inside them) keep the order they came in."""
    items = [{"z": 1, "ok": True, "meta": {"y": 1, "x": 2}, "a": "s"} for _ in range(5)]
    out = compile_expression("$input.items.filter(x, x.ok)").evaluate(Scope(input={"items": items}))
    assert out == items
    assert _all_keys(out) == _all_keys(items)
    picked = compile_expression("{'first': $input.items[0]}.first").evaluate(
        Scope(input={"items": items})
    )
    assert list(picked) == ["z", "ok", "meta", "a"]


def test_other_maps_have_sorted_keys() -> None:
    """Maps with a computed key, or built by a function, come out with their keys sorted."""
    out = compile_expression('{$params.k: 1, "b": 2, "a": 3}').evaluate(Scope(params={"k": "m"}))
    assert list(out) == ["a", "b", "m"]
    assert list(
        compile_expression('json.decode("{\\"b\\": 1, \\"a\\": 2}")').evaluate(Scope())
    ) == [
        "a",
        "b",
    ]
    assert list(compile_expression("{2: 'x', 1: 'y'}").evaluate(Scope())) == ["1", "2"]


def test_literal_order_wins_over_input_order() -> None:
    """When the data holds the same keys in another order, the expression's literal decides."""
    scope = Scope(input={"a": 1, "b": 2})
    assert list(compile_expression('{"b": $input.b, "a": $input.a}').evaluate(scope)) == ["b", "a"]


@settings(max_examples=200)
@given(record_lists())
def test_records_round_trip_with_their_key_order(records: list[dict[str, Any]]) -> None:
    """Any list of records sent through the engine comes back equal, each map in an order
    some input map with the same keys had."""
    out = compile_expression("[$input][0]").evaluate(Scope(input=records))
    assert out == records
    seen = _orders(records, {})
    for keys, orders in _orders(out, {}).items():
        assert orders <= seen[keys]


def test_optional_results_become_their_value() -> None:
    """``first()``/``last()`` optionals become the item, or null when the list is empty."""
    assert compile_expression("[{'b': 1, 'a': 2}].first()").evaluate(Scope()) == {"b": 1, "a": 2}
    assert compile_expression("[].last()").evaluate(Scope()) is None
    assert to_json_value([compile_expression("optional.of(1)").evaluate(Scope())]) == [1]
