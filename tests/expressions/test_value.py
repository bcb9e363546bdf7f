"""Whole configs compiled at once (``compile_value``) and the ``evaluate`` helper."""

from __future__ import annotations

import pytest

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    CompiledValue,
    Expression,
    Scope,
    Template,
    compile_expression,
    compile_template,
    compile_value,
    evaluate,
)

from .helpers import IDS


def test_compile_value_renders_templates_and_keeps_the_rest(scope: Scope) -> None:
    """Templates anywhere in the value render; constant parts are shared, not copied."""
    config = {
        "url": "https://api/{{ $params.city }}",
        "body": {"n": "{{ $input.count }}", "fixed": [1, 2]},
        "list": ["a", "{{ $node.fetch.data.body.id }}"],
    }
    cv = compile_value(config, node_ids=IDS)
    assert not cv.constant and cv.node_refs == {"fetch"} and cv.errors == []
    assert cv.roots == {"params", "input", "node"}
    out = cv.resolve(scope)
    assert out == {
        "url": "https://api/Berlin",
        "body": {"n": 2, "fixed": [1, 2]},
        "list": ["a", 7],
    }
    assert out["body"]["fixed"] is config["body"]["fixed"]
    assert config["url"] == "https://api/{{ $params.city }}"  # the input is not modified


def test_constant_value_is_returned_as_is() -> None:
    """With nothing to render, resolve returns the original object without copying."""
    config = {"a": [1, {"b": "no templates"}]}
    cv = compile_value(config)
    assert cv.constant and cv.resolve(Scope()) is config


def test_expression_deferred_and_opaque_paths(scope: Scope) -> None:
    """Expression paths compile bare expressions, deferred ones stay compiled for the block,
    opaque ones are left alone, and ``*`` matches any key or index."""
    config = {
        "expression": "$input.count > 1",
        "wrapped": "{{ $input.count > 1 }}",
        "operations": [
            {"expression": "$item.price * 2", "value": "{{ $item.qty }}", "label": "{{ 1 }}"},
            {"expression": "true", "value": {"deep": "x{{ $index }}"}, "label": "plain"},
            {"expression": "true", "value": "no template", "label": "p"},
        ],
        "body": {"nodes": {"a": {"config": {"x": "{{ $broken"}}}},
    }
    cv = compile_value(
        config,
        expression_paths=("expression", "wrapped", "operations.*.expression"),
        deferred_paths=("operations.*.value",),
        opaque_paths=("body",),
    )
    assert cv.errors == []
    assert cv.constant is False  # operations.0.label still renders
    out = cv.resolve(scope)
    assert isinstance(out["expression"], Expression)
    assert out["expression"].evaluate(scope) is True
    assert out["wrapped"].source == "$input.count > 1"
    ops = out["operations"]
    assert isinstance(ops[0]["expression"], Expression) and isinstance(ops[0]["value"], Template)
    assert ops[0]["label"] == 1
    assert evaluate(ops[0]["value"], scope, item={"qty": 3}) == 3
    assert isinstance(ops[1]["value"], CompiledValue)
    assert evaluate(ops[1]["value"], scope, index=4) == {"deep": "x4"}
    assert ops[2]["value"] == "no template"
    assert out["body"] is config["body"]
    only_exprs = compile_value({"e": "$item > 1"}, expression_paths=("e",))
    assert only_exprs.constant
    assert isinstance(only_exprs.resolve(scope)["e"], Expression)


def test_compile_value_collects_every_error() -> None:
    """All bad expressions are reported, each with its dotted path; good ones still compile."""
    config = {
        "a": "{{ 1 + }}",
        "b": ["ok {{ 1 }}", "{{ $nope }}"],
        "ops": [{"expression": "(("}, {"expression": "$node.ghost.data"}],
        "c": "{{ unclosed",
    }
    cv = compile_value(
        config, node_ids=IDS, expression_paths=("ops.*.expression",), path_prefix="config"
    )
    paths = [path for path, _ in cv.errors]
    assert paths == [
        "config.a",
        "config.b.1",
        "config.ops.0.expression",
        "config.ops.1.expression",
        "config.c",
    ]
    for path, err in cv.errors:
        assert err.key == path
        assert "_c3_" not in str(err)
    assert "unknown node 'ghost'" in cv.errors[3][1].reason


def test_resolve_errors_name_the_path(scope: Scope) -> None:
    """A failing template raises with ``key`` set to its dotted path."""
    cv = compile_value({"x": [{"y": "{{ $input.missing }}"}]})
    with pytest.raises(ExpressionError) as info:
        cv.resolve(scope)
    assert info.value.key == "x.0.y"
    assert "no field 'missing'" in info.value.reason
    assert info.value.expression == "$input.missing"
    assert "key 'x.0.y'" in str(info.value)


def test_evaluate_helper_passes_plain_values_through(scope: Scope) -> None:
    """:func:`evaluate` dispatches on the compiled kind and leaves other values alone."""
    assert evaluate("plain", scope) == "plain"
    assert evaluate(compile_expression("$params.min"), scope) == 10
    assert evaluate(compile_template("{{ $params.min }}!"), scope) == "10!"
