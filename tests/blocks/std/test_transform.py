"""Tests of ``std/transform``: every operation, on lists and objects, without mutating the input."""

from __future__ import annotations

import copy
import time
from typing import Any

import jsonschema
import pytest

from conv3n_jupyter.blocks.std.transform import OPERATIONS, Transform, _jsonpath
from conv3n_jupyter.errors import BlockError, ExpressionError
from tests.blocks.fakectx import FakeContext

BLOCK = Transform()

ITEMS = [
    {"id": 1, "name": "apple", "price": "1.5", "meta": {"color": "red", "tags": ["a"]}},
    {"id": 2, "name": "pear", "price": "3", "meta": {"color": "green", "tags": []}},
    {"id": 3, "name": "fig", "price": "2.25", "meta": {"color": "purple", "tags": ["b"]}},
]


async def run(operations: list[dict[str, Any]], input: Any = None, **config: Any) -> Any:
    """Run the block on a deep copy-checked input and return its data."""
    before = copy.deepcopy(input)
    ctx = FakeContext(BLOCK, {"operations": operations, **config}, input=input)
    out = await BLOCK.run(ctx)
    assert out.port == "default"
    assert input == before, "the input was mutated"
    return out.data


def validate(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Schema errors as (json path, message)."""
    validator = jsonschema.Draft202012Validator(Transform.config_schema)
    return [
        (".".join(str(p) for p in e.absolute_path), e.message)
        for e in validator.iter_errors(config)
    ]


# -- pick, omit, rename --------------------------------------------------------------------


async def test_pick_top_level_and_nested_fields_on_a_list() -> None:
    """pick keeps only the named fields, dotted ones as nested objects, skipping missing ones."""
    data = await run([{"type": "pick", "fields": ["id", "meta.color", "nope", "a.b"]}], ITEMS)
    assert data == [
        {"id": 1, "meta": {"color": "red"}},
        {"id": 2, "meta": {"color": "green"}},
        {"id": 3, "meta": {"color": "purple"}},
    ]


async def test_pick_whole_and_part_of_the_same_object_does_not_mutate() -> None:
    """pick of ``meta`` and ``meta.color`` copies ``meta`` instead of writing into the input."""
    data = await run([{"type": "pick", "fields": ["meta", "meta.color"]}], ITEMS[0])
    assert data == {"meta": ITEMS[0]["meta"]}


async def test_omit_copies_only_changed_paths() -> None:
    """omit removes fields; untouched sub-objects are shared, not copied."""
    data = await run([{"type": "omit", "fields": ["name", "meta.tags", "missing.x"]}], ITEMS)
    assert data[0] == {"id": 1, "price": "1.5", "meta": {"color": "red"}}
    assert "tags" in ITEMS[0]["meta"]
    same = await run([{"type": "omit", "fields": ["name"]}], ITEMS)
    assert same[0]["meta"] is ITEMS[0]["meta"]


async def test_omit_of_absent_field_returns_same_object() -> None:
    """An omit that removes nothing hands back the element itself (no copy)."""
    data = await run([{"type": "omit", "fields": ["zzz"]}], ITEMS)
    assert data[0] is ITEMS[0]


async def test_rename_moves_fields_including_into_nested_paths() -> None:
    """rename moves values to new (possibly dotted) names and ignores absent ones."""
    data = await run(
        [{"type": "rename", "mapping": {"name": "label", "meta.color": "colour", "x": "y"}}],
        ITEMS[0],
    )
    assert data == {
        "id": 1,
        "label": "apple",
        "price": "1.5",
        "meta": {"tags": ["a"]},
        "colour": "red",
    }
    nested = await run([{"type": "rename", "mapping": {"id": "ids.primary"}}], ITEMS[:1])
    assert nested[0]["ids"] == {"primary": 1} and "id" not in nested[0]


async def test_pick_on_non_object_element_names_the_element() -> None:
    """pick over a list with a non-object names the operation and the element index."""
    with pytest.raises(BlockError, match=r"operations\.0 \(pick\): element 1 is a number") as e:
        await run([{"type": "pick", "fields": ["a"]}], [{"a": 1}, 5])
    assert e.value.retryable is False


# -- set -----------------------------------------------------------------------------------


async def test_set_constants_templates_and_nested_paths() -> None:
    """set writes constants and per-element templates (with $item/$index), creating objects."""
    data = await run(
        [
            {
                "type": "set",
                "values": {
                    "source": "shop",
                    "doubled": "{{ $item.id * 2 }}",
                    "label": "#{{ $index }} {{ $item.name }}",
                    "meta.checked": True,
                    "extra.deep.value": None,
                },
            }
        ],
        ITEMS,
    )
    assert [d["doubled"] for d in data] == [2, 4, 6]
    assert [d["label"] for d in data] == ["#0 apple", "#1 pear", "#2 fig"]
    assert all(d["source"] == "shop" for d in data)
    assert data[0]["meta"] == {"color": "red", "tags": ["a"], "checked": True}
    assert data[0]["extra"] == {"deep": {"value": None}}
    assert data[0]["meta"]["tags"] is ITEMS[0]["meta"]["tags"]  # shallow copies only


async def test_set_mutable_constants_are_copied_per_element() -> None:
    """A list/object constant is copied for each element so later edits cannot alias."""
    data = await run([{"type": "set", "values": {"tags": ["new"], "o": {"k": [1]}}}], ITEMS)
    assert data[0]["tags"] == ["new"]
    assert data[0]["tags"] is not data[1]["tags"]
    assert data[0]["o"]["k"] is not data[1]["o"]["k"]


async def test_set_object_value_with_templates_inside() -> None:
    """Templates nested inside an object value are rendered per element."""
    data = await run(
        [{"type": "set", "values": {"ref": {"id": "{{ $item.id }}", "kind": "fruit"}}}], ITEMS
    )
    assert [d["ref"] for d in data] == [
        {"id": 1, "kind": "fruit"},
        {"id": 2, "kind": "fruit"},
        {"id": 3, "kind": "fruit"},
    ]


async def test_set_on_a_single_object_and_on_null() -> None:
    """set works on one object ($index 0), and on a null input it starts from an empty object."""
    one = await run(
        [{"type": "set", "values": {"i": "{{ $index }}", "n": "{{ $item.id }}"}}], ITEMS[0]
    )
    assert one["i"] == 0 and one["n"] == 1
    fresh = await run([{"type": "set", "values": {"a.b": 1}}], None)
    assert fresh == {"a": {"b": 1}}


async def test_set_overwrites_a_scalar_on_the_path() -> None:
    """Setting ``name.first`` where ``name`` is a string replaces it by an object."""
    data = await run([{"type": "set", "values": {"name.first": "x"}}], ITEMS[0])
    assert data["name"] == {"first": "x"}


# -- jsonpath ------------------------------------------------------------------------------


async def test_jsonpath_list_first_and_extended_filter() -> None:
    """jsonpath returns all matches, the first one, or null; the extended syntax is available."""
    doc = {"items": ITEMS}
    assert await run([{"type": "jsonpath", "query": "$.items[*].id"}], doc) == [1, 2, 3]
    assert await run([{"type": "jsonpath", "query": "$.items[*].id", "first": True}], doc) == 1
    assert await run([{"type": "jsonpath", "query": "$.nothing", "first": True}], doc) is None
    assert await run([{"type": "jsonpath", "query": "$.items[?(@.id > 1)].name"}], doc) == [
        "pear",
        "fig",
    ]


def test_jsonpath_queries_are_parsed_once() -> None:
    """The parsed query is cached by its text."""
    assert _jsonpath("$.a.b") is _jsonpath("$.a.b")


def test_check_reports_bad_jsonpath_with_its_path() -> None:
    """check() names the JSON path of a query that does not parse; templates are left alone."""
    problems = Transform.check(
        {
            "operations": [
                {"type": "pick", "fields": ["a"]},
                {"type": "jsonpath", "query": "$.[[["},
                {"type": "foo"},
                {"type": "jsonpath", "query": "{{ $params.q }}"},
            ]
        },
        "nodes.t.config",
    )
    assert [p.path for p in problems] == ["nodes.t.config.operations[1].query"]
    assert "invalid JSONPath query '$.[[['" in problems[0].reason


def test_workflow_validation_reports_operation_problems() -> None:
    """Loading a workflow reports a bad query and an unknown operation once each, with paths."""
    from conv3n_jupyter.errors import WorkflowValidationError
    from conv3n_jupyter.model import load

    wf = {
        "name": "t",
        "nodes": {
            "t": {
                "type": "std/transform",
                "config": {
                    "operations": [
                        {"type": "jsonpath", "query": "$.[[["},
                        {"type": "foo"},
                        {"type": "pick"},
                    ]
                },
            }
        },
    }
    with pytest.raises(WorkflowValidationError) as e:
        load(wf)
    problems = {p.path: p.reason for p in e.value.problems}
    assert "invalid JSONPath" in problems["nodes.t.config.operations[0].query"]
    assert "'foo' is not one of 'pick'" in problems["nodes.t.config.operations[1].type"]
    assert "'fields' is a required property" in problems["nodes.t.config.operations[2]"]
    assert len(e.value.problems) == 3


async def test_bad_jsonpath_at_run_time_is_a_block_error() -> None:
    """A query that only becomes bad after template resolution fails with a clear error."""
    with pytest.raises(BlockError, match="invalid JSONPath"):
        await run([{"type": "jsonpath", "query": "$.[[["}], {})


# -- map, filter ---------------------------------------------------------------------------


async def test_map_over_list_and_single_object() -> None:
    """map replaces each element by the expression's value; on an object it runs once."""
    assert await run([{"type": "map", "expression": "$item.id + $index"}], ITEMS) == [1, 3, 5]
    assert await run([{"type": "map", "expression": "$item.name"}], ITEMS[1]) == "pear"


async def test_filter_keeps_true_elements() -> None:
    """filter keeps the elements whose expression is true, in order."""
    data = await run([{"type": "filter", "expression": "$item.id != 2"}], ITEMS)
    assert [d["id"] for d in data] == [1, 3]
    assert data[0] is ITEMS[0]


async def test_filter_needs_boolean_results() -> None:
    """A non-boolean filter result fails, naming the element and what it gave."""
    with pytest.raises(BlockError, match=r"true or false; for element 0 it gave number 1"):
        await run([{"type": "filter", "expression": "$item.id"}], ITEMS)


async def test_filter_needs_a_list() -> None:
    """filter on an object is an error naming the type."""
    with pytest.raises(BlockError, match="needs a list, got object"):
        await run([{"type": "filter", "expression": "true"}], {"a": 1})


async def test_expression_error_names_the_key_and_element() -> None:
    """A failing expression is an ExpressionError with the operation's key and the element."""
    with pytest.raises(ExpressionError) as e:
        await run([{"type": "map", "expression": "$item.nope.deeper"}], ITEMS)
    assert e.value.key == "operations.0.expression"
    assert "element 0" in str(e.value)


# -- sort ----------------------------------------------------------------------------------


async def test_sort_is_stable_with_missing_last_both_ways() -> None:
    """sort orders by a dotted field, keeps ties in input order and puts null/missing last."""
    rows = [
        {"k": "a", "v": {"n": 2}},
        {"k": "b"},
        {"k": "c", "v": {"n": 1}},
        {"k": "d", "v": {"n": 2}},
        {"k": "e", "v": {"n": None}},
    ]
    up = await run([{"type": "sort", "by": "v.n"}], rows)
    assert [r["k"] for r in up] == ["c", "a", "d", "b", "e"]
    down = await run([{"type": "sort", "by": "v.n", "desc": True}], rows)
    assert [r["k"] for r in down] == ["a", "d", "c", "b", "e"]


async def test_sort_scalars_without_by() -> None:
    """Without ``by`` the elements themselves are sorted."""
    assert await run([{"type": "sort"}], [3, None, 1, 2]) == [1, 2, 3, None]
    assert await run([{"type": "sort", "desc": True}], ["b", "c", "a"]) == ["c", "b", "a"]


async def test_sort_mixed_types_is_a_clear_error() -> None:
    """Sorting numbers against strings fails, naming both kinds and elements."""
    with pytest.raises(
        BlockError, match=r"mixed types \(number at element 0, string at element 2\)"
    ):
        await run([{"type": "sort", "by": "x"}], [{"x": 1}, {"x": 2}, {"x": "3"}])
    with pytest.raises(BlockError, match="element 0 has a object"):
        await run([{"type": "sort", "by": "x"}], [{"x": {}}])


# -- convert -------------------------------------------------------------------------------


async def test_convert_all_types() -> None:
    """convert turns text into numbers, integers, booleans, dates and back into text."""
    row = {
        "n": "2.5",
        "i": "7",
        "f": "1e3",
        "whole": 4.0,
        "s": 12,
        "sf": 1.5,
        "sb": True,
        "so": {"a": [1]},
        "b": "Yes",
        "b0": 0,
        "d": "2024-03-01T10:00:00Z",
        "dd": "2024-03-01",
        "de": 0,
        "des": "86400",
        "nil": None,
    }
    fields = {
        "n": "number",
        "i": "integer",
        "f": "number",
        "whole": "integer",
        "s": "string",
        "sf": "string",
        "sb": "string",
        "so": "string",
        "b": "boolean",
        "b0": "boolean",
        "d": "date",
        "dd": "date",
        "de": "date",
        "des": "date",
        "nil": "number",
        "absent": "number",
    }
    data = await run([{"type": "convert", "fields": fields}], row)
    assert data == {
        "n": 2.5,
        "i": 7,
        "f": 1000.0,
        "whole": 4,
        "s": "12",
        "sf": "1.5",
        "sb": "true",
        "so": '{"a":[1]}',
        "b": True,
        "b0": False,
        "d": "2024-03-01T10:00:00+00:00",
        "dd": "2024-03-01",
        "de": "1970-01-01T00:00:00+00:00",
        "des": "1970-01-02T00:00:00+00:00",
        "nil": None,
    }
    assert isinstance(data["i"], int) and isinstance(data["whole"], int)


async def test_convert_nested_field_on_list_and_unchanged_elements_are_shared() -> None:
    """convert reaches dotted fields; an element needing no change is returned as is."""
    rows = [{"p": {"v": "1"}}, {"p": {"v": 2}}]
    data = await run([{"type": "convert", "fields": {"p.v": "number"}}], rows)
    assert data == [{"p": {"v": 1}}, {"p": {"v": 2}}]
    assert data[1] is rows[1]


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("abc", "number"),
        ("nan", "number"),
        ("1_000", "number"),
        ("2.5", "integer"),
        ("maybe", "boolean"),
        ("tomorrow", "date"),
        ([1], "number"),
        (True, "date"),
    ],
)
async def test_convert_errors_name_field_element_and_value(value: Any, target: str) -> None:
    """A value that does not convert fails naming the field, the element index and the value."""
    rows = [{"x": "1"}, {"x": value}]
    with pytest.raises(BlockError) as e:
        await run([{"type": "convert", "fields": {"x": target}}], rows)
    message = str(e.value)
    assert "operations.0 (convert)" in message
    assert "field 'x' of element 1" in message
    assert repr(value) in message and target in message
    assert e.value.retryable is False


# -- input, chaining, schema ---------------------------------------------------------------


async def test_input_key_overrides_node_input_and_operations_chain() -> None:
    """``input`` replaces $input; operations apply in order on each other's result."""
    ctx = FakeContext(
        BLOCK,
        {
            "input": ITEMS,
            "operations": [
                {"type": "convert", "fields": {"price": "number"}},
                {"type": "filter", "expression": "$item.price > 1.6"},
                {"type": "sort", "by": "price", "desc": True},
                {"type": "map", "expression": "$item.name"},
            ],
        },
        input={"ignored": True},
    )
    out = await BLOCK.run(ctx)
    assert out.data == ["pear", "fig"]
    assert ITEMS[0]["price"] == "1.5"


async def test_no_operations_passes_value_through() -> None:
    """With no operations the input comes out unchanged."""
    assert await run([], {"a": 1}) == {"a": 1}


def test_schema_is_valid_and_reports_errors_per_operation() -> None:
    """The config schema is valid JSON Schema; errors point into the offending operation."""
    jsonschema.Draft202012Validator.check_schema(Transform.config_schema)
    assert validate({"operations": [{"type": t} for t in ("sort",)]}) == []
    errors = validate(
        {
            "operations": [
                {"type": "pick"},
                {"type": "sort", "by": 1},
                {"type": "foo"},
                {"type": "convert", "fields": {"a": "decimal"}},
                {"type": "map", "expression": "$item", "extra": 1},
            ],
            "other": 1,
        }
    )
    paths = [p for p, _m in errors]
    assert "operations.0" in paths  # 'fields' is a required property
    assert "operations.1.by" in paths
    assert "operations.2.type" in paths
    assert "operations.3.fields.a" in paths
    assert "operations.4" in paths
    assert "" in paths  # 'other' not allowed
    assert set(OPERATIONS) == {
        "pick",
        "omit",
        "rename",
        "set",
        "jsonpath",
        "map",
        "filter",
        "sort",
        "convert",
    }


def test_schema_accepts_templates_for_flags() -> None:
    """Boolean settings accept a template string (resolved before the block runs)."""
    assert validate({"operations": [{"type": "sort", "by": "a", "desc": "{{ $params.d }}"}]}) == []


# -- speed ---------------------------------------------------------------------------------


async def test_ten_thousand_items_set_and_convert_are_fast() -> None:
    """10,000 items through set (constant + template) and convert stay well under a second."""
    items = [{"id": i, "price": str(i % 100), "name": f"n{i}"} for i in range(10_000)]
    ops = [
        {"type": "set", "values": {"source": "bench", "double": "{{ $item.id * 2 }}"}},
        {"type": "convert", "fields": {"price": "number"}},
    ]
    ctx = FakeContext(BLOCK, {"operations": ops}, input=items)
    started = time.perf_counter()
    out = await BLOCK.run(ctx)
    elapsed = time.perf_counter() - started
    assert out.data[9_999] == {
        "id": 9_999,
        "price": 99,
        "name": "n9999",
        "source": "bench",
        "double": 19_998,
    }
    assert items[0]["price"] == "0"
    assert elapsed < 1.0
