"""Tests of ``{{ }}`` templates and expressions: roots, paths, text, errors, limits, safety."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    CompiledValue,
    Expression,
    Limits,
    Scope,
    Template,
    compile_expression,
    compile_template,
    compile_value,
    evaluate,
    has_template,
    to_json_value,
    to_text,
)

from .strategies import (
    json_values,
    node_reference_sets,
    path_expressions,
    step_text,
    template_texts,
)

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
NODES = {
    "fetch": {"status": "success", "port": "default", "data": {"body": {"id": 7, "tags": ["a"]}}},
    "my-id": {"status": "success", "port": "true", "data": {"x": 1}},
    "my": {"status": "skipped", "port": "default", "data": None},
}
IDS = frozenset(NODES)


@pytest.fixture
def scope() -> Scope:
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


# -- roots ---------------------------------------------------------------------------------------


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


# -- $node ids -----------------------------------------------------------------------------------


def test_node_ids_with_dashes_in_both_syntaxes(scope: Scope) -> None:
    """``$node["my-id"]`` and ``$node.my-id`` (a known id) both reach node ``my-id``."""
    for src in ('$node["my-id"].data.x', "$node.my-id.data.x", "$node['my-id'].data.x"):
        expr = compile_expression(src, node_ids=IDS)
        assert expr.node_refs == {"my-id"}
        assert expr.evaluate(scope) == 1
    assert ev("$node.my-id.data.x + 1", scope) == 2
    assert ev("$node.my-id.port == 'true'", scope) is True


def test_dashed_id_is_matched_greedily_against_known_ids(scope: Scope) -> None:
    """With ids ``my`` and ``my-id``, ``$node.my-id`` means ``my-id``; ``$node.my-2`` is node
    ``my`` minus 2; a dashed name matching no id at all is an unknown node."""
    assert compile_expression("$node.my-id.status", node_ids=IDS).node_refs == {"my-id"}
    assert compile_expression("$node.my.status", node_ids=IDS).node_refs == {"my"}
    assert compile_expression("$node.my-2", node_ids=IDS).node_refs == {"my"}
    with pytest.raises(ExpressionError, match="unknown node 'other-id'"):
        compile_expression("$node.other-id.status", node_ids=IDS)


def test_unknown_node_is_a_compile_error_listing_known_ids() -> None:
    """``$node.ID`` with an id the workflow lacks fails at compile time, naming the known ids."""
    for src in ("$node.nope.data", '$node["nope"].data'):
        with pytest.raises(ExpressionError) as info:
            compile_expression(src, node_ids=IDS)
        assert "unknown node 'nope'" in info.value.reason
        assert "fetch, my, my-id" in info.value.reason
        assert info.value.expression == src


def test_node_needs_a_literal_id() -> None:
    """Bare ``$node`` or a computed id is refused: only named nodes are ever converted."""
    for src in ("$node", "size($node)", "$node[$params.id]", '"a" in $node'):
        with pytest.raises(ExpressionError, match=r"\$node must be followed by a node id"):
            compile_expression(src)


def test_node_without_result_is_reported(scope: Scope) -> None:
    """A referenced node with no result (not run) gives a reason naming it, in both paths."""
    empty = Scope(nodes={})
    assert "node 'fetch' has no result" in error_of("$node.fetch.data", empty).reason
    assert "node 'fetch' has no result" in error_of("$node.fetch.data.body.id + 1", empty).reason
    assert ev("has($node.fetch)", empty) is False
    assert ev("has($node.fetch.data)", scope) is True


def test_node_ids_are_optional() -> None:
    """Without ``node_ids`` any plain id is accepted and dashed ids need the bracket form."""
    expr = compile_expression("$node.anything.data")
    assert expr.node_refs == {"anything"}
    assert compile_expression('$node["a-b"].data').node_refs == {"a-b"}


@given(node_reference_sets())
def test_node_refs_finds_every_reference(case: tuple[list[str], list[str], str]) -> None:
    """Every ``$node`` reference, dotted or bracketed, dashed or not, lands in ``node_refs``."""
    ids, refs, src = case
    assert compile_expression(src, node_ids=ids).node_refs == set(refs)
    assert compile_template("x {{ " + src + " }}", node_ids=ids).node_refs == set(refs)


def test_only_referenced_nodes_are_converted() -> None:
    """A node holding a value CEL cannot convert does not matter unless it is referenced."""
    nodes = {"ok": {"data": {"n": 1}}, "weird": {"data": object()}}
    assert compile_expression("$node.ok.data.n + 1").evaluate(Scope(nodes=nodes)) == 2


# -- paths ---------------------------------------------------------------------------------------


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


# -- templates -----------------------------------------------------------------------------------


def test_whole_template_keeps_the_type(scope: Scope) -> None:
    """A string that is exactly one ``{{ EXPR }}`` renders to the value itself."""
    tpl = compile_template("{{ $input.count }}")
    assert isinstance(tpl, Template) and tpl.whole
    assert tpl.render(scope) == 2
    assert compile_template("{{ $input.items }}").render(scope) == scope.input["items"]
    assert compile_template("{{ $params.min > 3 }}").render(scope) is True
    assert compile_template("{{ null }}").render(scope) is None


def test_spliced_template_makes_text(scope: Scope) -> None:
    """Text around or between ``{{ }}`` makes the result a string."""
    assert compile_template("Hello {{ $params.city }}!").render(scope) == "Hello Berlin!"
    assert compile_template(" {{ $input.count }}").render(scope) == " 2"
    assert compile_template("{{ 1 }}{{ 2 }}").render(scope) == "12"
    assert not compile_template("{{ 1 }}{{ 2 }}").whole  # type: ignore[union-attr]


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


def test_braces_inside_expressions_do_not_end_them(scope: Scope) -> None:
    """``}}`` inside a string or a nested map literal belongs to the expression."""
    assert compile_template('{{ "}}" }}').render(scope) == "}}"
    assert compile_template("{{ {'a': {'b': 1}} }}").render(scope) == {"a": {"b": 1}}
    assert compile_template("a {{ '{{' }} b").render(scope) == "a {{ b"


def test_text_without_template_is_returned_unchanged() -> None:
    """A string with no ``{{`` is returned as the very same object."""
    text = "plain } text {"
    assert compile_template(text) is text
    assert not has_template(text)
    assert has_template("a {{ b }}")


@given(template_texts)
def test_rendering_text_templates(text: str) -> None:
    """Random mixes of text and expressions render each part in place."""
    scope = Scope(input={"a": "A"}, params={"n": 5})
    expected = (
        text.replace("{{ $input.a }}", "A")
        .replace("{{ $params.n }}", "5")
        .replace("{{ 1 + 2 }}", "3")
        .replace("{{ 'x' }}", "x")
    )
    tpl = compile_template(text)
    if isinstance(tpl, str):
        assert tpl == text
        return
    result = tpl.render(scope)
    if tpl.whole:
        result = to_text(result)
    assert result == expected


# -- safety --------------------------------------------------------------------------------------


def test_data_is_never_evaluated() -> None:
    """Values containing ``{{ }}`` come out verbatim: rendering never runs data as an expression."""
    scope = Scope(input={"body": "{{ 7*7 }}", "nested": {"x": "{{ $secrets.token }}"}},
                  secrets={"token": "s3cr3t"})  # fmt: skip
    assert compile_template("{{ $input.body }}").render(scope) == "{{ 7*7 }}"
    assert compile_template("got {{ $input.body }}").render(scope) == "got {{ 7*7 }}"
    assert compile_template("{{ $input.nested }}").render(scope) == {"x": "{{ $secrets.token }}"}
    assert compile_template("{{ $input.body + '' }}").render(scope) == "{{ 7*7 }}"
    cv = compile_value({"a": "{{ $input.body }}", "b": ["x {{ $input.nested }}"]})
    assert cv.resolve(scope) == {"a": "{{ 7*7 }}", "b": ['x {"x": "{{ $secrets.token }}"}']}


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


# -- errors --------------------------------------------------------------------------------------


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


def test_parse_errors_point_at_the_users_text() -> None:
    """Syntax errors show the caret under the user's text, with ``$`` names."""
    with pytest.raises(ExpressionError) as info:
        compile_expression("$input.count +")
    reason = info.value.reason
    assert "_c3_" not in str(info.value)
    assert reason.endswith("| $input.count +\n| ..............^")
    with pytest.raises(ExpressionError) as info:
        compile_expression("$node.my-id.data +* 2", node_ids=IDS)
    assert "| $node.my-id.data +* 2\n| ..................^" in info.value.reason


def test_reserved_and_stray_names_are_refused() -> None:
    """Internal names cannot be written directly and a lone ``$`` is explained."""
    for src, reason in [
        ("_c3_input.x", "reserved"),
        ("$ input", "'$' must start a root name"),
        ("a$input", "cannot follow"),
        ("x.$input", "cannot follow"),
        ("'abc", "unterminated string"),
        ("   ", "empty expression"),
    ]:
        with pytest.raises(ExpressionError, match=re.escape(reason)):
            compile_expression(src)


def test_unclosed_template_is_an_error() -> None:
    """``{{`` without ``}}`` is an error naming the text."""
    with pytest.raises(ExpressionError) as info:
        compile_template("Hello {{ $params.name")
    assert "'{{' at column 7 has no closing '}}'" in info.value.reason
    assert info.value.expression == "Hello {{ $params.name"
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_template("a {{ }} b")


def test_dollar_names_inside_strings_and_comments_are_text() -> None:
    """``$`` inside string literals (all quote styles) and comments is not a root."""
    scope = Scope()
    cases = {
        "'$input'": "$input",
        '"$nope \\" $x"': '$nope " $x',
        "'''$a\n'b'''": "$a\n'b",
        '"""$b"""': "$b",
        'r"$c\\d"': "$c\\d",
        "1 // $unknown it's a comment\n + 1": 2,
        "b'$'": "JA==",
    }
    for src, expected in cases.items():
        expr = compile_expression(src)
        assert expr.roots == frozenset(), src
        assert expr.evaluate(scope) == expected, src


# -- compile_value -------------------------------------------------------------------------------


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


# -- caching and plumbing ------------------------------------------------------------------------


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
