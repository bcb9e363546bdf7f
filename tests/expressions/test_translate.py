"""Rewriting ``$`` roots: node ids, references, reserved names, ``$`` inside strings, parse errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    Scope,
    compile_expression,
    compile_template,
)

from ..strategies import (
    node_reference_sets,
)
from .helpers import IDS, error_of, ev


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
