"""Tests of ``std/condition``: true/false routing, multi-way cases, boolean results only."""

from __future__ import annotations

import jsonschema
import pytest

from conv3n_jupyter.blocks.base import Output
from conv3n_jupyter.blocks.std.condition import Condition
from conv3n_jupyter.errors import BlockError, ExpressionError
from tests.blocks.fakectx import FakeContext

BLOCK = Condition()


async def run(config: dict, input: object = None, **kw) -> Output:
    out = await BLOCK.run(FakeContext(BLOCK, config, input=input, **kw))
    assert isinstance(out, Output)
    return out


@pytest.mark.parametrize(("n", "port"), [(5, "true"), (1, "false")])
async def test_expression_picks_true_or_false(n: int, port: str) -> None:
    """The expression's boolean picks the port; the input passes through unchanged."""
    data = {"n": n, "tags": ["a"]}
    out = await run({"expression": "$input.n > 2"}, data)
    assert out.port == port
    assert out.data is data


async def test_expression_sees_params_and_vars() -> None:
    """Expressions read the node's scope ($params, $vars)."""
    out = await run(
        {"expression": "$params.limit < $vars.count"},
        params={"limit": 3},
        vars={"count": 4},
    )
    assert out.port == "true"


@pytest.mark.parametrize(
    ("expression", "kind"),
    [("$input.n", "number"), ("'yes'", "string"), ("$input.missing_ok", "null")],
)
async def test_non_boolean_result_is_an_error(expression: str, kind: str) -> None:
    """Truthiness is not guessed: a non-boolean result names its type, without retry."""
    with pytest.raises(BlockError, match=f"must give a boolean, got {kind}") as info:
        await run({"expression": expression}, {"n": 3, "missing_ok": None})
    assert info.value.retryable is False
    assert "'expression'" in str(info.value)


async def test_expression_failure_is_an_expression_error() -> None:
    """A failing expression (missing field) surfaces as ExpressionError."""
    with pytest.raises(ExpressionError):
        await run({"expression": "$input.nope.deeper > 1"}, {"n": 1})


CASES = {
    "cases": [
        {"port": "vip", "expression": "$input.total >= 1000"},
        {"port": "big", "expression": "$input.total >= 100"},
        {"port": "vip", "expression": "$input.tags.exists(t, t == 'vip')"},
    ],
    "default_port": "normal",
}


@pytest.mark.parametrize(
    ("order", "port"),
    [
        ({"total": 5000, "tags": []}, "vip"),
        ({"total": 500, "tags": []}, "big"),
        ({"total": 5000, "tags": ["vip"]}, "vip"),
        ({"total": 5, "tags": ["vip"]}, "vip"),
        ({"total": 5, "tags": []}, "normal"),
    ],
)
async def test_first_matching_case_wins(order: dict, port: str) -> None:
    """Cases are tried in order; none matching goes to default_port."""
    out = await run(CASES, order)
    assert out.port == port
    assert out.data == order


async def test_later_cases_are_not_evaluated_after_a_match() -> None:
    """After the first match, later cases (even failing ones) are not evaluated."""
    config = {
        "cases": [
            {"port": "a", "expression": "true"},
            {"port": "b", "expression": "$input.missing.field == 1"},
        ]
    }
    assert (await run(config, {})).port == "a"


async def test_default_port_defaults_to_default() -> None:
    """Without default_port, no match leaves on port 'default'."""
    out = await run({"cases": [{"port": "a", "expression": "false"}]})
    assert out.port == "default"


async def test_non_boolean_case_names_the_case() -> None:
    """A case giving a non-boolean names its index."""
    config = {"cases": [{"port": "a", "expression": "false"}, {"port": "b", "expression": "1"}]}
    with pytest.raises(BlockError, match=r"cases\[1\]\.expression"):
        await run(config)


def test_output_ports() -> None:
    """Ports are true/false, or the cases' ports (once each) plus the default port."""
    assert Condition.output_ports({"expression": "true"}) == ("true", "false")
    assert Condition.output_ports(CASES) == ("vip", "big", "normal")
    assert Condition.output_ports({"cases": [{"port": "x", "expression": "true"}]}) == (
        "x",
        "default",
    )


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({}, "n.config"),
        ({"expression": "true", "cases": []}, "n.config"),
        ({"expression": "true", "default_port": "x"}, "n.config.default_port"),
        ({"cases": [{"port": "error", "expression": "true"}]}, "n.config.cases.0.port"),
        ({"cases": [{"port": "a", "expression": "true"}], "default_port": "error"}, None),
    ],
)
def test_check_reports_bad_shapes(config: dict, path: str | None) -> None:
    """Exactly one of expression/cases; 'error' is reserved; default_port needs cases."""
    problems = Condition.check(config, "n.config")
    assert problems
    if path is not None:
        assert problems[0].path == path
    assert Condition.check({"expression": "true"}, "n.config") == []
    assert Condition.check(CASES, "n.config") == []


def test_declares_expression_paths() -> None:
    """The engine compiles the bare expressions, including each case's."""
    assert Condition.expression_paths == ("expression", "cases.*.expression")


def test_config_schema() -> None:
    """The schema is valid and closed; ports must be identifiers."""
    jsonschema.Draft202012Validator.check_schema(Condition.config_schema)
    validator = jsonschema.Draft202012Validator(Condition.config_schema)
    assert not list(validator.iter_errors(CASES))
    assert not list(validator.iter_errors({"expression": "$input.ok"}))
    assert list(validator.iter_errors({"cases": [{"port": "bad port", "expression": "true"}]}))
    assert list(validator.iter_errors({"cases": [{"port": "a"}]}))
    assert list(validator.iter_errors({"expression": "true", "other": 1}))
