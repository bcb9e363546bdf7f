"""The function library: both call styles, loading only when used, bounds, errors, purity."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import given

from conv3n_jupyter import _cel
from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import Scope, compile_expression
from conv3n_jupyter.expressions._functions import MAX_TEXT, NAMES, NAMESPACES

from ..strategies import json_values
from .helpers import error_of


def ev(src: str, **roots: Any) -> Any:
    return compile_expression(src).evaluate(Scope(**roots))


@pytest.mark.parametrize(
    ("method", "function", "expected"),
    [
        ('"a,b".split(",")', 'split("a,b", ",")', ["a", "b"]),
        ('"Hello".lowerAscii()', 'lowerAscii("Hello")', "hello"),
        ('["a", "b"].join("-")', 'join(["a", "b"], "-")', "a-b"),
        ('"path/to/file.csv".split("/")[2]', 'split("path/to/file.csv", "/")[2]', "file.csv"),
        ("[3, 1, 2].sort()", "sort([3, 1, 2])", [1, 2, 3]),
        ("[1, 2, 2].distinct()", "distinct([1, 2, 2])", [1, 2]),
        ('" x ".trim()', 'trim(" x ")', "x"),
        ('"abc".substring(1)', 'substring("abc", 1)', "bc"),
        ("[1, 2].sum()", "sum([1, 2])", 3),
        ("[1, 5].max()", "max([1, 5])", 5),
        ('"true".bool()', 'bool("true")', True),
    ],
)
def test_functions_without_a_dot_work_in_both_call_styles(
    method: str, function: str, expected: Any
) -> None:
    """``x.f(a)`` is ``f(x, a)`` for every library function without a namespace."""
    assert ev(method) == expected
    assert ev(function) == expected


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("math.greatest([1, 5, 3])", 5),
        ("math.greatest(1, 5, 3)", 5),
        ('base64.encode(b"hi")', "aGk="),
        ("lists.range(3)", [0, 1, 2]),
        ("sets.contains([1, 2], [2])", True),
        ('url.encode("a b")', "a%20b"),
        ('json.decode("[1, 2]")', [1, 2]),
        ('strings.quote("a")', '"a"'),
    ],
)
def test_namespaced_functions_are_called_by_their_dotted_name(src: str, expected: Any) -> None:
    assert ev(src) == expected


def test_namespaced_functions_are_not_methods() -> None:
    """``[1, 5].greatest()`` names no function: only ``math.greatest(…)`` does."""
    assert "unknown variable or function 'greatest'" in error_of("[1, 5].greatest()").reason


def test_functions_apply_to_roots_and_inside_macros() -> None:
    """Library calls take paths and macro variables as receivers, like CEL's own methods."""
    data = {"file": "a/b/c.csv", "items": [{"name": "Pen"}, {"name": "Lamp"}]}
    assert ev("$input.file.split('/')[2]", input=data) == "c.csv"
    assert ev("$input.items.map(i, i.name.upperAscii())", input=data) == ["PEN", "LAMP"]
    assert ev("$input.items.map(i, i.name).sort().join(',')", input=data) == "Lamp,Pen"
    assert ev("$item.name.lowerAscii()", item={"name": "X"}) == "x"


def test_expressions_list_only_the_functions_they_call() -> None:
    """``functions`` holds the library names an expression calls; CEL's own are not in it."""
    assert compile_expression("$input.s.split(',').join('-')").functions == {"split", "join"}
    assert compile_expression("math.greatest([1]) + math.least([2])").functions == {
        "math.greatest",
        "math.least",
    }
    plain = ["$input.count + 1", "size($input.items) > 2", "'abc'.contains('b')", "[1].map(x, x)"]
    for src in plain:
        assert compile_expression(src).functions == frozenset(), src


def test_plain_expressions_build_no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """An expression calling no library function is executed with a plain dict, as before;
    one that does gets a context holding only the functions it calls."""
    native = _cel.native()
    real = native.Context
    built: list[list[str]] = []

    def counting(variables: Any = None, functions: Any = None) -> Any:
        built.append(sorted(functions or {}))
        return real(variables, functions=functions)

    monkeypatch.setattr(native, "Context", counting)
    scope = Scope(input={"count": 2, "s": "a,b", "items": [{"ok": True}]})
    for src in ("$input.count + 1", "$input.items.filter(x, x.ok)", "'ab'.contains('b')"):
        compile_expression(src).evaluate(scope)
    assert built == []
    assert compile_expression("$input.s.split(',').size()").evaluate(scope) == 2
    assert built == [["split"]]


def test_library_loads_only_when_an_expression_calls_it() -> None:
    """Plain expressions leave ``cel.stdlib`` unloaded; the ``cel`` package ``__init__`` never
    runs, a later ``import cel`` shares the loaded modules, and a failing function prints
    nothing (its failure is the expression's error)."""
    code = (
        "import sys\n"
        "from conv3n_jupyter.expressions import compile_expression, Scope\n"
        "from conv3n_jupyter.errors import ExpressionError\n"
        "assert compile_expression('1 + 1').evaluate(Scope()) == 2\n"
        "assert 'cel.stdlib' not in sys.modules\n"
        "assert compile_expression('\"a,b\".split(\",\")').evaluate(Scope()) == ['a', 'b']\n"
        "assert 'cel.stdlib' in sys.modules and 'cel' not in sys.modules\n"
        "try:\n"
        "    compile_expression('\"abc\".substring(9)').evaluate(Scope())\n"
        "except ExpressionError:\n"
        "    pass\n"
        "import cel\n"
        "assert cel.stdlib is sys.modules['cel.stdlib']\n"
        "ctx = cel.Context()\n"
        "cel.stdlib.add_stdlib_to_context(ctx)\n"
        "assert cel.evaluate('\"ab\".charAt(1)', ctx) == 'b'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert out.stderr == ""


def test_the_library_is_the_engine_packages_plus_ours() -> None:
    """Every function of the package's ``cel.stdlib`` is exposed except ``contains`` (CEL's own
    string ``contains`` stays native); ``url.*`` and ``json.decode`` are added."""
    shipped = set(_cel.stdlib().STDLIB_FUNCTIONS)
    assert shipped - NAMES == {"contains"}
    assert NAMES - shipped == {"url.encode", "url.decode", "json.decode"}
    assert {n.split(".")[0] for n in NAMES if "." in n} == NAMESPACES


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ('"abc".substring(5)', "substring: [5:3] out of range for string of length 3"),
        ('[1, "a"].sort()', "sort() failed: '<' not supported"),
        ("math.greatest([])", "math.greatest() failed: at least one argument is required"),
        ('base64.decode("!")', "base64.decode() failed"),
        ('"a".split(1)', "split() failed"),
        ("math.nope(1)", "unknown function in math.* (known: abs, bitAnd"),
        ("[1, 2].contains(1)", "for lists and maps write `x in list`"),
        ('json.decode("{")', "json.decode() failed"),
        ('url.decode("%ff")', "url.decode() failed"),
        ('int("x")', "int() failed: string parse error"),
        ("int($input)", "int() does not take arguments of these types"),
    ],
)
def test_function_failures_have_short_reasons(src: str, reason: str) -> None:
    err = error_of(src, Scope(input={}))
    assert reason in err.reason
    assert "Check function arguments" not in err.reason


_TEN_AS = '"aaaaaaaaaa"'
_TEN_S = "[" + ", ".join(["s"] * 10) + "]"


@pytest.mark.parametrize(
    "src",
    [
        '"a"' + f'.replace("a", {_TEN_AS})' * 8,
        f'["{"x" * 1000}"]' + f'.map(s, {_TEN_S}.join(""))' * 5 + "[0].size()",
        '"' + "\\\\" * 200 + '"' + '.replace("\\\\", "\\\\\\\\")' * 20,
        "lists.range(2000000)",
    ],
)
def test_results_that_would_exhaust_memory_are_refused(src: str) -> None:
    """Chained calls that grow a string or list exponentially stop at a limit, quickly."""
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=r"limit|longer than"):
        compile_expression(src).evaluate(Scope())
    assert time.perf_counter() - start < 5


def test_quote_and_base64_chains_are_bounded() -> None:
    """Functions that grow their input a little each call are checked on every result."""
    src = "strings.quote(" * 30 + '"\\\\' * 1 + '"' + ")" * 30
    with pytest.raises(ExpressionError, match=f"longer than {MAX_TEXT:,}"):
        compile_expression(src).evaluate(Scope())


def test_integer_results_stay_64_bit() -> None:
    """``sum`` and ``math.abs`` fail on overflow like CEL's own arithmetic, not round to a
    double."""
    assert "integer overflow" in error_of("sum([9223372036854775807, 1])").reason
    assert "integer overflow" in error_of("math.abs(-9223372036854775807 - 1)").reason
    assert ev("sum([9223372036854775806, 1])") == 9223372036854775807


def test_set_functions_and_distinct_keep_cel_equality_in_linear_time() -> None:
    """Lists and maps compare by value; 50,000 items take far less than the quadratic time."""
    assert ev('[1, "1", [1], [1], {"a": 1}, {"a": 1}, 2.5, 2.5].distinct()') == [
        1,
        "1",
        [1],
        {"a": 1},
        2.5,
    ]
    assert ev("sets.contains([[1], {'a': 1}], [{'a': 1}])") is True
    assert ev("sets.equivalent([[1], [2]], [[2], [1], [1]])") is True
    assert ev("sets.intersects([[1]], [[2]])") is False
    start = time.perf_counter()
    assert ev("lists.range(50000).distinct().size()") == 50000
    assert ev("sets.contains(lists.range(50000), lists.range(50000))") is True
    assert time.perf_counter() - start < 3


@given(json_values)
def test_values_reach_functions_as_they_reach_plain_expressions(value: Any) -> None:
    """The context a library call needs converts the roots exactly as the plain path does."""
    scope = Scope(input=value)
    plain = compile_expression("[$input, 'A'][0]").evaluate(scope)
    with_call = compile_expression("[$input, 'A'.lowerAscii()][0]")
    assert with_call.functions == {"lowerAscii"}
    assert with_call.evaluate(scope) == plain
