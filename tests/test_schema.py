"""The JSON Schema of the workflow format agrees with the model's own validation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator

from conv3n_jupyter.blocks import registry
from conv3n_jupyter.blocks.base import Block
from conv3n_jupyter.model import validate
from conv3n_jupyter.schema import DRAFT, block_config_schema, load_blocks, workflow_schema


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(workflow_schema())


def schema_errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(doc)]


FULL = {
    "conv3n": "1",
    "id": "wf-1",
    "name": "everything",
    "description": "uses every part of the format",
    "params": {
        "city": {"type": "string", "default": "Berlin", "description": "where"},
        "n": {"type": ["integer", "null"], "title": "count"},
        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
    },
    "nodes": {
        "start": {
            "type": "std/noop",
            "config": {"value": "{{ $params.city }}"},
            "position": {"x": 0, "y": 1.5},
        },
        "wait": {
            "type": "std/delay",
            "config": {"duration": 10, "unit": "ms"},
            "depends_on": ["start"],
            "retry": {
                "max_attempts": 3,
                "backoff": "linear",
                "initial_delay": "200ms",
                "max_delay": "10s",
                "jitter": False,
            },
            "timeout": "30s",
            "on_error": "continue",
            "notes": "a short pause",
            "x-ui": {"collapsed": True},
        },
        "gate": {
            "type": "std/condition",
            "config": {"expression": "$input == 'Berlin'"},
            "breakpoint": "before",
        },
        "yes": {"type": "std/noop", "fallback": "rescue", "disabled": False},
        "rescue": {"type": "std/noop", "config": {"value": "rescued"}},
        "handler": {"type": "std/noop"},
    },
    "edges": [
        {"source": "wait", "target": "gate"},
        {
            "id": "e2",
            "source": "gate",
            "target": "yes",
            "sourceHandle": "true",
            "targetHandle": None,
        },
    ],
    "triggers": [
        {"type": "manual"},
        {
            "type": "webhook",
            "path": "/hook",
            "method": "POST",
            "respond": "immediately",
            "schema": {"type": "object"},
        },
        {
            "type": "cron",
            "expression": "*/5 * * * *",
            "timezone": "Europe/Berlin",
            "id": "every5",
            "enabled": False,
        },
        {"type": "file", "path": "inbox", "events": ["created"], "pattern": "*.csv"},
    ],
    "groups": {"main": {"nodes": ["gate", "yes"], "on_error": "handler"}},
    "config": {
        "max_concurrent_nodes": 4,
        "timeout": 60000,
        "pin": {"start": {"data": "Paris", "port": "default"}},
    },
    "x-editor": {"zoom": 1.25},
}

LIST_SHAPE = {
    "name": "list shape",
    "nodes": [
        {"id": "a", "type": "std/noop"},
        {"id": "b", "type": "std/delay", "config": {"duration": "1.5s"}, "depends_on": "a"},
    ],
}


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The generated schema passes the draft 2020-12 meta-schema."""
    schema = workflow_schema()
    assert schema["$schema"] == DRAFT
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("doc", [FULL, LIST_SHAPE], ids=["map", "list"])
def test_good_workflows_pass_both_checks(
    validator: Draft202012Validator, doc: dict[str, Any]
) -> None:
    """A workflow the model accepts is accepted by the schema, in both node shapes."""
    assert validate(copy.deepcopy(doc)) == []
    assert schema_errors(validator, doc) == []


def _edit(path: tuple[Any, ...], value: Any, base: dict[str, Any] = FULL) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()

BAD = {
    "unknown top-level key": (("extra",), 1),
    "missing name": (("name",), _DELETE),
    "empty name": (("name",), "  "),
    "unknown version": (("conv3n",), "2"),
    "numeric version": (("conv3n",), 1),
    "nodes not a collection": (("nodes",), "a"),
    "no nodes": (("nodes",), {}),
    "bad node id": (("nodes", "9lives"), {"type": "std/noop"}),
    "unknown node key": (("nodes", "start", "colour"), "red"),
    "unknown block type": (("nodes", "start", "type"), "std/nope"),
    "missing block type": (("nodes", "start", "type"), _DELETE),
    "bad config key": (("nodes", "start", "config", "bogus"), 1),
    "bad config value": (("nodes", "wait", "config", "unit"), "hours"),
    "config not an object": (("nodes", "start", "config"), [1]),
    "bad duration": (("nodes", "wait", "timeout"), "soon"),
    "negative duration": (("nodes", "wait", "timeout"), -5),
    "bad retry key": (("nodes", "wait", "retry", "tries"), 3),
    "retry attempts": (("nodes", "wait", "retry", "max_attempts"), 0),
    "bad backoff": (("nodes", "wait", "retry", "backoff"), "random"),
    "bad on_error": (("nodes", "wait", "on_error"), "ignore"),
    "bad breakpoint": (("nodes", "gate", "breakpoint"), "during"),
    "bad disabled": (("nodes", "yes", "disabled"), "no"),
    "bad position": (("nodes", "start", "position"), {"x": 1}),
    "bad depends_on": (("nodes", "wait", "depends_on"), [1]),
    "edge without target": (("edges", 0, "target"), _DELETE),
    "unknown edge key": (("edges", 0, "weight"), 2),
    "bad param type": (("params", "city", "type"), "text"),
    "unknown param key": (("params", "city", "required"), True),
    "bad param name": (("params", "1st"), {"type": "string"}),
    "unknown trigger": (("triggers", 0, "type"), "email"),
    "webhook without path": (("triggers", 1, "path"), _DELETE),
    "bad webhook method": (("triggers", 1, "method"), "TRACE"),
    "bad trigger key": (("triggers", 0, "path"), "/x"),
    "short cron": (("triggers", 2, "expression"), "* * *"),
    "bad file event": (("triggers", 3, "events"), ["renamed"]),
    "group without nodes": (("groups", "main", "nodes"), _DELETE),
    "unknown group key": (("groups", "main", "retry"), 1),
    "unknown config key": (("config", "parallel"), 2),
    "bad concurrency": (("config", "max_concurrent_nodes"), 0),
    "pin without data": (("config", "pin", "start"), {"port": "default"}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_workflows_fail_both_checks(validator: Draft202012Validator, case: str) -> None:
    """What the model rejects for its structure, the schema rejects too."""
    path, value = BAD[case]
    doc = _edit(path, value)
    assert validate(copy.deepcopy(doc)) != [], "the model should reject it"
    assert schema_errors(validator, doc) != [], "the schema should reject it"


def test_block_config_is_checked_per_type(validator: Draft202012Validator) -> None:
    """A config key that one block has and another lacks is judged by the node's own type."""
    ok = {"name": "w", "nodes": {"d": {"type": "std/delay", "config": {"duration": 5}}}}
    assert schema_errors(validator, ok) == []
    swapped = {"name": "w", "nodes": {"d": {"type": "std/noop", "config": {"duration": 5}}}}
    assert schema_errors(validator, swapped) == ["nodes/d/config"]
    listed = {"name": "w", "nodes": [{"id": "d", "type": "std/delay", "config": {"unit": "hours"}}]}
    assert schema_errors(validator, listed) == ["nodes/0/config/unit"]


def test_node_type_enum_lists_the_loadable_blocks() -> None:
    """The type enum holds every block that loads, each with its config schema in $defs."""
    blocks, errors = load_blocks()
    schema = workflow_schema(blocks)
    enum = schema["$defs"]["node"]["properties"]["type"]["enum"]
    assert enum == sorted(blocks)
    assert {"std/noop", "std/delay", "std/condition", "std/http_request"} <= set(enum)
    assert not set(errors) & set(enum)
    branches = schema["$defs"]["block_config"]["allOf"]
    assert [b["if"]["properties"]["type"]["const"] for b in branches] == enum


class _RefBlock(Block):
    """A block whose schema uses its own $defs, as generated schemas often do."""

    type = "test/ref-block"
    title = "Ref block"
    description = "uses internal references"
    config_schema: ClassVar[dict[str, Any]] = {
        "$schema": DRAFT,
        "type": "object",
        "properties": {"level": {"$ref": "#/$defs/level"}},
        "additionalProperties": False,
        "$defs": {"level": {"enum": ["low", "high"]}},
    }


@pytest.fixture
def ref_block() -> Iterator[type[Block]]:
    registry.register(_RefBlock)
    try:
        yield _RefBlock
    finally:
        registry.unregister(_RefBlock.type)


def test_block_schemas_with_internal_refs_keep_working(ref_block: type[Block]) -> None:
    """A block schema's '#/...' references resolve inside that block's schema, not the root."""
    blocks, _ = load_blocks([ref_block.type, "std/noop"])
    schema = workflow_schema(blocks)
    Draft202012Validator.check_schema(schema)
    v = Draft202012Validator(schema)
    good = {"name": "w", "nodes": {"r": {"type": ref_block.type, "config": {"level": "low"}}}}
    bad = {"name": "w", "nodes": {"r": {"type": ref_block.type, "config": {"level": "mid"}}}}
    assert schema_errors(v, good) == []
    assert schema_errors(v, bad) == ["nodes/r/config/level"]


def test_block_config_schema_is_standalone() -> None:
    """The schema of one block stands alone: $schema, a title and the block's properties."""
    blocks, _ = load_blocks(["std/delay"])
    schema = block_config_schema(blocks["std/delay"])
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT
    assert schema["title"] == "std/delay config"
    v = Draft202012Validator(schema)
    assert not list(v.iter_errors({"duration": 5, "unit": "s"}))
    assert list(v.iter_errors({"unit": "weeks"}))


def test_unknown_types_are_reported_not_raised() -> None:
    """load_blocks reports an unknown type with the known ones instead of raising."""
    blocks, errors = load_blocks(["std/noop", "std/nope"])
    assert list(blocks) == ["std/noop"]
    assert "unknown block type 'std/nope'" in errors["std/nope"]


def test_durations(validator: Draft202012Validator) -> None:
    """Durations: milliseconds as numbers, or strings with units the engine reads."""
    for good in (0, 250, 1.5, "250", "200ms", "1.5s", "1m", "1h30m", "2d", " 10S "):
        doc = {"name": "w", "nodes": {"a": {"type": "std/noop", "timeout": good}}}
        assert schema_errors(validator, doc) == [], good
        assert validate(doc) == [], good
    for bad in (-1, "", "soon", "5 minutes", "1x", True):
        doc = {"name": "w", "nodes": {"a": {"type": "std/noop", "timeout": bad}}}
        assert schema_errors(validator, doc) != [], bad
        assert validate(doc) != [], bad
