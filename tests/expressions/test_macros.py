"""``size()`` of a path and macros on a path, computed in Python: same results and errors as
the CEL engine, linear time, lazy evaluation, readable errors.

The CEL engine's result is obtained by writing the receiver as ``[$input][0]``, a computed
value, which the Python path leaves to the engine.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import Scope, compile_expression
from conv3n_jupyter.expressions._slots import find_slots
from conv3n_jupyter.expressions._translate import translate

from .helpers import IDS, NODES, error_of


def outcome(src: str, scope: Scope) -> tuple[str, Any]:
    """``("ok", JSON text)`` or ``("error", reason)``: JSON text tells ``1`` from ``true``."""
    try:
        value = compile_expression(src, node_ids=IDS).evaluate(scope)
    except ExpressionError as exc:
        return "error", exc.reason
    return "ok", json.dumps(value, sort_keys=True)


def by_cel(src: str) -> str:
    """The same expression with ``$input`` computed, so that CEL evaluates its macros."""
    return src.replace("$input", "[$input][0]")


def assert_same(src: str, scope: Scope) -> tuple[str, Any]:
    """The Python path and the engine agree: the same value, or both an error."""
    fast, slow = outcome(src, scope), outcome(by_cel(src), scope)
    if fast[0] == "error" or slow[0] == "error":
        assert fast[0] == slow[0], (src, fast, slow)
    else:
        assert fast == slow, src
    return fast


# -- the same results and errors as the engine ----------------------------------------------------

elements = st.one_of(
    st.integers(-2, 3),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "a", "bc"]),
    st.fixed_dictionaries({"v": st.integers(-1, 2)}),
    st.lists(st.integers(0, 2), max_size=2),
)
CONDITIONS = (
    "x > 0",
    "1 / x > 0",
    "x",
    "x == 1",
    "x.v > 0",
    "has(x.v) && x.v != 0",
    "type(x) == int && x > 1",
    "x != null",
    "size(x) > 1",
    "x == true || x",
    "x.exists(y, y == 2)",
)
RESULTS = ("x", "[x, 1]", "x == 1", "string(x)", "x.v", "size(x)", "x.map(y, y * 2)")


CALLS = [
    f"$input.{m}(x, {c})" for m in ("filter", "exists", "all", "exists_one") for c in CONDITIONS
]
CALLS += [f"$input.map(x, {r})" for r in RESULTS]
CALLS += [f"$input.map(x, {c}, {r})" for c in CONDITIONS for r in ("x", "x.v", "[x]")]


@pytest.mark.parametrize("call", CALLS)
@settings(max_examples=25, deadline=None)
@given(
    st.lists(elements, max_size=6),
    st.sampled_from(("{}", "size({})", "{} != null || true", "[{}][0]")),
)
def test_macros_on_a_list_agree_with_the_engine(call: str, items: list[Any], around: str) -> None:
    """Any macro over any list: the same value as CEL's, or an error where CEL errs, including
    where it stops (the first error; ``exists`` at the first true, ``all`` at the first false)."""
    assert_same(around.format(call), Scope(input=items))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(elements, max_size=5),
    st.sampled_from(CONDITIONS),
    st.sampled_from(RESULTS),
    st.sampled_from(CONDITIONS),
)
def test_chains_agree_with_the_engine(items: list[Any], first: str, result: str, last: str) -> None:
    """``filter`` then ``map`` then ``exists``, each stage fed by the one before."""
    src = f"$input.filter(x, {first}).map(x, {result}).exists(x, {last})"
    assert_same(src, Scope(input=items))
    assert_same(f"size($input.filter(x, {first}).map(x, {result}))", Scope(input=items))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "bc", "tx", "total"]), st.integers(), max_size=5),
    st.sampled_from(("filter", "map", "exists", "all", "exists_one")),
    st.sampled_from(("x.size() > 1", 'x == "a"', 'x.startsWith("t")', "x")),
)
def test_macros_over_a_map_visit_its_keys(data: dict[str, int], macro: str, body: str) -> None:
    """Over a map, a macro visits the keys (the engine's order is its own: lists are sorted)."""
    src = f"$input.{macro}(x, {body})"
    if macro in ("filter", "map"):
        src = f"$input.{macro}(x, {body}).sort()"
    assert_same(src, Scope(input=data))


@pytest.mark.parametrize(
    ("items", "src", "expected"),
    [
        ([1, 0, 2], "$input.exists(x, 1 / x > 0)", True),
        ([0, 1], "$input.exists(x, 1 / x > 0)", "division by zero"),
        ([1, 0], "$input.all(x, 1 / x > 5)", False),
        ([0, 1], "$input.all(x, 1 / x > 5)", "division by zero"),
        ([2, 3, 0], "$input.exists_one(x, 1 / x > 0)", "division by zero"),
        ([1, 2, 3], "$input.exists_one(x, x > 1)", False),
        ([1, 2, 3], "$input.exists_one(x, x > 2)", True),
        ([1, 2, 3], "$input.map(x, x > 1, x * 10)", [20, 30]),
        ([2, 1], "$input.exists(x, x == 2 || x)", True),
        ([1, 2], "$input.exists(x, x == 2 || x)", "No such overload"),
        ([True, 1], "$input.filter(x, x)", "No such overload"),
        ([[1, 2], [3]], "$input.map(x, x.filter(y, y > 1))", [[2], [3]]),
        ([[1, 2], [3]], "$input.all(x, x.all(y, y > 0))", True),
        ([3, 1, 2], "$input.map(x, x * 2).filter(y, y > 2).sort()", [4, 6]),
    ],
)
def test_macro_semantics(items: list[Any], src: str, expected: Any) -> None:
    """The engine's rules, shown on small cases (and checked against the engine)."""
    kind, got = assert_same(src, Scope(input=items))
    if isinstance(expected, str):
        assert kind == "error" and expected in got
    else:
        assert kind == "ok" and json.loads(got) == expected


def test_macros_anywhere_in_an_expression() -> None:
    """Macros on paths inside arithmetic, conditions, indexing, library calls, or nested in
    the arguments of another macro on a path, including bound variables of the outer one."""
    data = {
        "items": [
            {"name": "pen", "price": 5, "tags": ["office"]},
            {"name": "lamp", "price": 40, "tags": ["home", "office"]},
        ],
        "other": [1, 2, 3],
        "min": 10,
    }
    scope = Scope(input=data, item={"price": 7}, index=1, params={"min": 4})
    cases = {
        "$input.items.filter(i, i.price > $input.min)[0].name + '!'": "lamp!",
        "sum($input.items.map(i, i.price)) * 2": 90,
        "'lamp' in $input.items.map(i, i.name)": True,
        "!$input.items.exists(i, i.price > 100) && size($input.other) == 3": True,
        "$input.items.filter(i, i.tags.exists(t, t == 'home')).map(i, i.name)": ["lamp"],
        "$input.items.map(i, i.tags.filter(t, t != i.name + 'x').size())": [1, 2],
        "$input.other.filter(x, $input.other.exists(y, y == x + 1))": [1, 2],
        "[10, 20].map(y, $input.other.filter(x, x * 10 == y))": [[1], [2]],
        "$input.items.map(i, i.tags.map(i, i + '!'))": [["office!"], ["home!", "office!"]],
        "$input.other.map(item, item + $item.price + $index)": [9, 10, 11],
        "$input.other.filter(x, x > $params.min) + $input.other.map(y, y * 2)": [2, 4, 6],
        "$input.items.map(i, {'n': i.name, 'p': i.price})[1]": {"n": "lamp", "p": 40},
        "$input.other.filter(x, // a comment\n x > 1).size()": 2,
        "$input.other.map(x, math.greatest(x, 2))": [2, 2, 3],
    }
    for src, expected in cases.items():
        kind, got = assert_same(src, scope)
        assert kind == "ok" and json.loads(got) == expected, src
    fetch = Scope(nodes=NODES)
    assert compile_expression("$node.fetch.data.body.tags.map(t, t + '!')", node_ids=IDS).evaluate(
        fetch
    ) == ["a!"]


def test_result_maps_keep_their_key_order() -> None:
    """Items passed through keep their keys' order; map literals keep the order written."""
    scope = Scope(input=[{"b": 1, "a": 2, "c": 3}])
    got = compile_expression("$input.filter(x, x.a > 0)").evaluate(scope)
    assert [list(m) for m in got] == [["b", "a", "c"]]
    got = compile_expression("$input.map(x, x)").evaluate(scope)
    assert [list(m) for m in got] == [["b", "a", "c"]]
    got = compile_expression("$input.map(x, {'z': x.a, 'y': x.b})").evaluate(scope)
    assert [list(m) for m in got] == [["z", "y"]]


# -- laziness and errors ----------------------------------------------------------------------


def test_a_chain_is_evaluated_only_where_cel_reaches_it() -> None:
    """A branch not taken is not computed; an error CEL absorbs (``||``) is absorbed."""
    scope = Scope(input={"items": [{"a": 1}]})
    assert assert_same("false ? $input.nope.filter(x, x) : 1", scope) == ("ok", "1")
    src = "has($input.nope) ? $input.nope.map(x, x * 2) : []"
    assert assert_same(src, scope) == ("ok", "[]")
    assert assert_same("$input.items.exists(x, x.vip) || true", scope) == ("ok", "true")
    assert assert_same("$input.items.map(x, x.vip) == [] && false", scope) == ("ok", "false")
    assert assert_same("$input.items.map(x, x.vip) == [] && true", scope)[0] == "error"


def test_errors_name_the_bound_variable() -> None:
    """A missing field of an element names the variable and the fields it has."""
    scope = Scope(input={"items": [{"a": 1}]})
    assert error_of("$input.items.exists(x, x.vip)", scope).reason == (
        "no field 'vip' in x (available: a)"
    )
    assert error_of("$input.items.map(x, x.vip + 1)", scope).reason.startswith(
        "no field 'vip' in x"
    )
    assert error_of("$input.items.map(x, x[3])", scope).reason  # CEL's reason
    assert error_of("size($input.nope.filter(x, x))", scope).reason == (
        "no field 'nope' in $input (available: items)"
    )
    assert "only available inside std/loop" in error_of("$item.map(x, x)", scope).reason
    err = error_of("$input.items.filter(x, x.a)", scope)
    assert "No such overload" in err.reason
    assert err.expression == "$input.items.filter(x, x.a)"


def test_failing_chains_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The engine logs failing Python functions; a failing chain is an error, not a log."""
    scope = Scope(input=[0])
    with caplog.at_level(logging.DEBUG):
        for src in ("1 + size($input.filter(x, 1 / x > 0))", "$input.map(x, x.a)[0] == 1"):
            with pytest.raises(ExpressionError):
                compile_expression(src).evaluate(scope)
    assert not [r for r in caplog.records if "_c3_" in r.getMessage()]


def test_values_the_python_path_leaves_to_cel() -> None:
    """A macro over a string or number, ``size()`` of a number or a bool: CEL's own errors."""
    for value in ("abc", 5, None, 1.5):
        scope = Scope(input={"v": value})
        for src in ("$input.v.filter(x, true)", "size($input.v.map(x, x)) + 1"):
            assert assert_same(src, scope)[0] == "error"
    scope = Scope(input={"v": 5})
    assert "size() does not take" in error_of("size($input.v) > 0", scope).reason
    assert "size() does not take" in error_of("$input.v.size()", scope).reason
    scope = Scope(input={"v": [5]})
    assert "size() does not take" in error_of("size($input.v.exists(x, true))", scope).reason


# -- size() ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.integers(), max_size=5),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=5),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
        st.binary(max_size=5),
        st.integers(),
        st.booleans(),
        st.none(),
    ),
    st.sampled_from(("size($input)", "$input.size() == 0", "size($input) > 0 ? 1 : 2")),
)
def test_size_of_a_path_agrees_with_the_engine(value: Any, src: str) -> None:
    """Lists, maps, strings (the engine counts UTF-8 bytes), bytes; an error for others."""
    assert_same(src, Scope(input=value))


def test_size_of_a_path_inside_other_shapes() -> None:
    scope = Scope(input={"items": [1, 2, 3], "s": "héllo"})
    cases = {
        "size($input.items) > 0": True,
        "$input.items.size() == 3": True,
        "size ( $input.items ) * 2": 6,
        "size($input.s)": 6,
        "[0].map(x, size($input.items) + x)": [3],
        "has($input.nope) && size($input.nope) > 0": False,
        "$input.items.filter(x, x < size($input.items))": [1, 2],
    }
    for src, expected in cases.items():
        kind, got = assert_same(src, scope)
        assert kind == "ok" and json.loads(got) == expected, src


# -- where the Python path applies ------------------------------------------------------------


def _spans(src: str) -> list[str]:
    tr = translate(src, None)
    return [tr.text[s.start : s.end] for s in find_slots(tr)]


def test_the_shapes_found() -> None:
    """Spans computed in Python: size() of a path, macro chains on a path (not inside the
    arguments of a macro left to CEL, nor rebinding a variable of an enclosing macro)."""
    assert _spans("size($input) > 0") == ["size(_c3_input)"]
    assert _spans("$input.a.size() + 1") == ["_c3_input.a.size()"]
    assert _spans("$input.a.filter(x, x.ok).map(x, x.n)[0]") == [
        "_c3_input.a.filter(x, x.ok).map(x, x.n)"
    ]
    assert _spans("size($input.a.filter(x, size($input.b) > x))") == [
        "size(_c3_input.a.filter(x, size(_c3_input.b) > x))"
    ]
    assert _spans("$input.a.exists(x, x).map(y, y)") == ["_c3_input.a.exists(x, x)"]
    assert _spans("[1].map(y, $input.a.filter(x, x == y))") == []
    assert _spans("[1].map(y, size($input.a) + y)") == ["size(_c3_input.a)"]
    assert _spans("$input.a.map(x, x.b.map(x, x))") == []
    assert _spans("$input.a.map(true, 1)") == []
    assert _spans("$input.a.map(math, 1)") == []
    assert _spans("$input.a.map(x, 1, 2, 3)") == []
    assert _spans("$input.a.filter(x, x).foo().map(y, y)") == ["_c3_input.a.filter(x, x)"]
    assert _spans("has($input.a) || [1, 2].map(x, x) == []") == []
    assert _spans("size($input.a + [1])") == []
    assert _spans("$input.a.b.size") == []


# -- time -------------------------------------------------------------------------------------


def _items(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "price": i % 50, "ok": i % 3 == 0, "name": f"n{i}", "vip": False, "total": i}
        for i in range(n)
    ]


def _timed(src: str, scope: Scope) -> tuple[Any, float]:
    expr = compile_expression(src)
    start = time.perf_counter()
    value = expr.evaluate(scope)
    return value, time.perf_counter() - start


def test_macros_on_long_lists_take_linear_time() -> None:
    """20,000 items: CEL's own macros would take minutes (their time grows with the square
    of the length); in Python each takes milliseconds."""
    scope = Scope(input={"items": _items(20_000)})
    value, took = _timed("$input.items.filter(x, x.price > 10)", scope)
    assert len(value) == 15_600 and took < 2
    value, took = _timed("$input.items.filter(x, x.ok).map(x, x.name)", scope)
    assert len(value) == 6_667 and value[1] == "n3" and took < 2
    for src in ("$input.items.all(o, o.total >= 0)", "!$input.items.exists(x, x.vip)"):
        value, took = _timed(src, scope)
        assert value is True and took < 2
    value, took = _timed("size($input.items.filter(x, x.ok)) + 1", scope)
    assert value == 6_668 and took < 2


def test_size_of_a_long_list_does_not_convert_it() -> None:
    """``size()`` of a path is constant time: converting 200,000 items would take seconds."""
    scope = Scope(input=_items(200_000))
    for src in ("size($input) > 0", "$input.size() == 0"):
        compile_expression(src).evaluate(scope)  # compiled, warm
        took = min(_timed(src, scope)[1] for _ in range(3))
        assert took < 0.05, (src, took)
