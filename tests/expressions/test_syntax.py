"""Limits checked before CEL parses an expression."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    Limits,
    Scope,
    compile_expression,
)
from conv3n_jupyter.expressions._syntax import map_literal_keys, tokenize


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("1" + "+1" * 20_000, "characters long, more than the limit of 4096"),
        ("a." * 50_000 + "a", "characters long, more than the limit of 4096"),
        ("(" * 40 + "1" + ")" * 40, "nesting deeper than 32 brackets"),
        ("[" * 33 + "]" * 33, "nesting deeper than 32 brackets"),
        (
            "[1].map(a, [1].map(b, [1].map(c, [1].map(d, d))))",
            "macros (map, filter, exists, all, exists_one) nested deeper than 3",
        ),
        (
            "[1].all(a, [1].exists(b, [1].filter(c, [1].exists_one(d, true)).size() > 0))",
            "nested deeper than 3",
        ),
    ],
)
def test_limits_are_checked_before_parsing(src: str, reason: str) -> None:
    """Input that could overflow the native parser is refused with a reason, not parsed."""
    with pytest.raises(ExpressionError) as info:
        compile_expression(src)
    assert reason in info.value.reason


def test_token_ceiling_holds_whatever_max_length_says() -> None:
    """Raising ``max_length`` does not let a 20,000-operator chain reach the parser."""
    with pytest.raises(ExpressionError, match="more than 8192 tokens"):
        compile_expression("1" + "+1" * 20_000, limits=Limits(max_length=10**6))


def test_limits_are_configurable() -> None:
    """Lower limits reject what the defaults allow; macros in sequence are not nesting."""
    strict = Limits(max_length=10, max_depth=2, max_macro_depth=1)
    with pytest.raises(ExpressionError, match="limit of 10"):
        compile_expression("1 + 2 + 3 + 4", limits=strict)
    with pytest.raises(ExpressionError, match="deeper than 2"):
        compile_expression("(((1)))", limits=strict)
    assert compile_expression("[1].map(x, x).map(y, y)").evaluate(Scope()) == [1]
    assert compile_expression("(" * 32 + "1" + ")" * 32).evaluate(Scope()) == 1


def test_deep_nesting_is_refused_in_a_child_process() -> None:
    """The inputs that abort the process when parsed are refused and the process survives."""
    code = (
        "from conv3n_jupyter.expressions import compile_expression, Limits\n"
        "from conv3n_jupyter.errors import ExpressionError\n"
        "for src in ['1' + '+1' * 20000, 'a.' * 50000 + 'a', '(' * 5000 + '1' + ')' * 5000]:\n"
        "    for limits in (Limits(), Limits(max_length=10**7)):\n"
        "        try:\n"
        "            compile_expression(src, limits=limits)\n"
        "        except ExpressionError:\n"
        "            pass\n"
        "print('alive')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alive"


@pytest.mark.parametrize(
    ("src", "keys"),
    [
        ('{"b": 1, "a": 2}', (("b", "a"),)),
        ("{'b': 1, 'a': {'d': [1, 2], 'c': f(x, y)}}", (("d", "c"), ("b", "a"))),
        ('{"a": 1, "b": 2,}', (("a", "b"),)),
        ('{$params.k: 1, "a": 2}', ()),
        ('{"a" + "b": 1}', ()),
        ('{r"a": 1, "b\\n": 2}', ()),
        ("{}", ()),
        ('[{"x": 1}, {"x": 2}]', ()),
        ('[1].map(i, {"n": i, "m": [i, i]})', (("n", "m"),)),
        ('"{\\"not\\": 1}"', ()),
    ],
)
def test_map_literal_keys_are_recorded_in_written_order(
    src: str, keys: tuple[tuple[str, ...], ...]
) -> None:
    """Only maps whose keys are all plain string literals are recorded, innermost first."""
    assert map_literal_keys(tokenize(src)) == keys
