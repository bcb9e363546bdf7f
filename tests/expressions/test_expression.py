"""Compiled expressions: error reasons, caching, pickling, reprs, loading the engine."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    Limits,
    Scope,
    compile_expression,
    compile_template,
    compile_value,
)

from .helpers import IDS, error_of


def test_type_errors_keep_cels_reason(scope: Scope) -> None:
    """CEL does not coerce; its explanation is passed on."""
    err = error_of("$input.count + 1.5", scope)
    assert "does not coerce" in err.reason
    assert err.expression == "$input.count + 1.5"
    assert error_of("1 / 0").reason == "division by zero"


def test_undefined_root_is_named() -> None:
    """``$item`` outside a loop names the root, not the internal identifier."""
    for src in ("$item.price", "$item.price * 2", "$index + 1"):
        err = error_of(src, Scope())
        assert err.reason.startswith("$item" if "item" in src else "$index")
        assert "only available inside std/loop" in err.reason


def test_unknown_root_and_function() -> None:
    """An unknown ``$name`` lists the known roots; an unknown function is named."""
    with pytest.raises(ExpressionError) as info:
        compile_expression("$inptu.x")
    assert "unknown root '$inptu'" in info.value.reason and "$input" in info.value.reason
    assert error_of("nope(1)").reason == "unknown variable or function 'nope'"
    assert error_of("x + 1").reason == "unknown variable or function 'x'"


def test_compiling_is_cached() -> None:
    """Compiling the same text again returns the same compiled object."""
    a = compile_expression("$params.min * 3")
    assert compile_expression("$params.min * 3") is a
    assert compile_expression("$params.min * 3", node_ids=["x"]) is not a
    t = compile_template("a {{ 1 }}")
    assert compile_template("a {{ 1 }}") is t


def test_compiled_objects_pickle() -> None:
    """Expressions and templates survive pickling (for worker processes)."""
    expr = compile_expression("$node.my-id.data.x + 1", node_ids=IDS)
    assert pickle.loads(pickle.dumps(expr)) is expr
    tpl = compile_template("a {{ $params.city }}")
    copy = pickle.loads(pickle.dumps(tpl))
    assert copy.render(Scope(params={"city": "B"})) == "a B"


def test_reprs_show_identity_and_state(scope: Scope) -> None:
    assert repr(compile_expression("$input.x")) == "<Expression '$input.x' path>"
    assert "text" in repr(compile_template("a {{ 1 }}"))
    assert "constant" in repr(compile_value({}))
    assert "3 nodes" in repr(scope)
    assert "Limits(max_length=4096" in repr(Limits())


def test_cel_package_init_is_not_imported() -> None:
    """Only the native engine loads (the ``cel`` package's CLI does not), and a later
    ``import cel`` by user code still works."""
    code = (
        "import sys\n"
        "from conv3n_jupyter.expressions import compile_expression, Scope\n"
        "assert 'cel.cel' not in sys.modules\n"
        "assert compile_expression('1 + 1').evaluate(Scope()) == 2\n"
        "assert 'cel.cel' in sys.modules and 'cel' not in sys.modules\n"
        "assert 'typer' not in sys.modules and 'prompt_toolkit' not in sys.modules\n"
        "import cel\n"
        "assert cel.evaluate('2 + 2') == 4\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
