"""Parsing and validation: both node shapes, round trips, and every kind of problem at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.errors import WorkflowValidationError
from conv3n_jupyter.model import load, parse, validate


def problems(data: Any) -> list[str]:
    return [str(p) for p in validate(data)]


def one(data: Any) -> str:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def test_map_and_list_shapes_build_the_same_graph() -> None:
    as_map = load(
        {
            "name": "w",
            "nodes": {"a": {"type": "std/noop"}, "b": {"type": "std/noop", "depends_on": ["a"]}},
        }
    )
    as_list = load(
        {
            "name": "w",
            "nodes": [
                {"id": "a", "type": "std/noop"},
                {"id": "b", "type": "std/noop", "depends_on": ["a"]},
            ],
        }
    )
    assert list(as_map.nodes) == list(as_list.nodes) == ["a", "b"]
    assert [(e.source, e.target) for e in as_map.all_edges] == [
        (e.source, e.target) for e in as_list.all_edges
    ]
    assert as_list.to_dict()["nodes"][0]["id"] == "a"


def test_round_trip_keeps_x_keys_and_shape() -> None:
    data = {
        "conv3n": "1",
        "name": "w",
        "nodes": [
            {"id": "a", "type": "std/noop", "x-ui": {"color": "red"}, "position": {"x": 1, "y": 2}},
            {"id": "b", "type": "std/noop"},
        ],
        "edges": [{"source": "a", "target": "b", "x-style": "dashed"}],
        "x-editor": {"zoom": 1.5},
    }
    out = parse(data).to_dict()
    assert out["x-editor"] == {"zoom": 1.5}
    assert out["nodes"][0]["x-ui"] == {"color": "red"}
    assert out["edges"][0]["x-style"] == "dashed"
    assert parse(out).to_dict() == out


def test_canonical_file_round_trips_exactly() -> None:
    data = {
        "conv3n": "1",
        "id": "wf-1",
        "name": "w",
        "description": "d",
        "params": {"city": {"type": "string", "default": "Berlin"}},
        "nodes": {
            "a": {
                "type": "std/noop",
                "config": {"value": "{{ $params.city }}"},
                "retry": {"max_attempts": 2},
                "timeout": "5s",
            },
            "b": {"type": "std/noop", "depends_on": ["a"], "on_error": "continue", "notes": "n"},
        },
        "edges": [{"source": "a", "target": "b", "id": "e1"}],
        "triggers": [{"type": "manual"}],
        "groups": {"g": {"nodes": ["b"]}},
        "config": {"max_concurrent_nodes": 2},
    }
    assert parse(data).to_dict() == data


def test_unknown_block_type_lists_known_ones() -> None:
    msg = one({"name": "w", "nodes": {"a": {"type": "std/nope"}}})
    assert (
        "nodes.a.type" in msg
        and "unknown block type 'std/nope'" in msg
        and "std/http_request" in msg
    )


def test_config_that_breaks_the_block_schema_names_the_key() -> None:
    msg = one({"name": "w", "nodes": {"a": {"type": "std/noop", "config": {"bogus": 1}}}})
    assert msg.startswith("nodes.a.config")
    assert "bogus" in msg


def test_edge_to_missing_node() -> None:
    msg = one(
        {
            "name": "w",
            "nodes": {"a": {"type": "std/noop"}},
            "edges": [{"source": "a", "target": "zz"}],
        }
    )
    assert msg.startswith("edges[0].target") and "'zz' is not a node" in msg


def test_unknown_port() -> None:
    data = {
        "name": "w",
        "nodes": {
            "c": {"type": "std/condition", "config": {"expression": "true"}},
            "d": {"type": "std/noop"},
        },
        "edges": [{"source": "c", "target": "d", "sourceHandle": "maybe"}],
    }
    msg = one(data)
    assert "edges[0].sourceHandle" in msg and "no port 'maybe'" in msg and "true" in msg


def test_error_port_needs_on_error_continue() -> None:
    data = {
        "name": "w",
        "nodes": {"a": {"type": "std/noop"}, "b": {"type": "std/noop"}},
        "edges": [{"source": "a", "target": "b", "sourceHandle": "error"}],
    }
    assert "on_error" in one(data)


def test_reference_to_a_node_that_is_not_upstream() -> None:
    data = {
        "name": "w",
        "nodes": {
            "a": {"type": "std/noop"},
            "b": {"type": "std/noop", "config": {"value": "{{ $node.a.data }}"}},
        },
    }
    msg = one(data)
    assert msg.startswith("nodes.b.config") and "not upstream" in msg


def test_reference_to_dashed_ids_both_syntaxes() -> None:
    data = {
        "name": "w",
        "nodes": {
            "my-node": {"type": "std/noop", "config": {"value": 3}},
            "b": {
                "type": "std/noop",
                "depends_on": ["my-node"],
                "config": {"value": '{{ $node.my-node.data + $node["my-node"].data }}'},
            },
        },
    }
    assert problems(data) == []


def test_cycle_names_the_nodes_on_it() -> None:
    data = {
        "name": "w",
        "nodes": {
            "a": {"type": "std/noop"},
            "b": {"type": "std/noop", "depends_on": ["a"]},
            "c": {"type": "std/noop", "depends_on": ["b"]},
        },
        "edges": [{"source": "c", "target": "a"}],
    }
    msg = one(data)
    assert "cycle" in msg and "a -> b -> c -> a" in msg


def test_bad_duration_and_bad_id_and_unknown_keys_all_at_once() -> None:
    data = {
        "name": "w",
        "nodes": {
            "1bad": {"type": "std/noop", "timeout": "soon"},
            "ok": {"type": "std/noop", "retyr": {}},
        },
        "extra": 1,
    }
    found = problems(data)
    assert any("bad node id '1bad'" in p for p in found)
    assert any(
        p.startswith("nodes.1bad.timeout") and "bad duration: invalid duration 'soon'" in p
        for p in found
    )
    assert any("retyr" in p and "did you mean 'retry'" in p for p in found)
    assert any(p.startswith("extra") and "x-" in p for p in found)
    assert len(found) == 4


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.conv3n.json"
    f.write_text('{\n  "name": "w",\n  "nodes": {,}\n}')
    with pytest.raises(WorkflowValidationError) as info:
        load(f)
    assert "line 3, column 13" in str(info.value)
    assert str(f) in str(info.value)


def test_broken_expression_is_a_validation_problem() -> None:
    msg = one({"name": "w", "nodes": {"a": {"type": "std/noop", "config": {"value": "{{ 1 + }}"}}}})
    assert msg.startswith("nodes.a.config.value")


def test_standby_nodes_reject_incoming_edges() -> None:
    data = {
        "name": "w",
        "nodes": {
            "a": {"type": "std/noop", "fallback": "fb"},
            "fb": {"type": "std/noop"},
            "b": {"type": "std/noop"},
        },
        "edges": [{"source": "b", "target": "fb"}],
    }
    assert "standby" in one(data)


def test_param_default_type_and_unknown_version() -> None:
    found = problems(
        {
            "conv3n": "2",
            "name": "w",
            "params": {"n": {"type": "integer", "default": "x"}},
            "nodes": {"a": {"type": "std/noop"}},
        }
    )
    assert any("version" in p for p in found)
    assert any(p.startswith("params.n.default") for p in found)


def test_missing_name_and_nodes() -> None:
    found = problems({})
    assert any(p.startswith("name") for p in found)
    assert any(p.startswith("nodes") for p in found)


def test_not_an_object() -> None:
    assert "JSON object" in one([1, 2])


def test_groups_and_pins_are_checked() -> None:
    found = problems(
        {
            "name": "w",
            "nodes": {"a": {"type": "std/noop"}},
            "groups": {"g": {"nodes": ["a", "ghost"], "on_error": "nobody"}},
            "config": {"pin": {"zz": {"data": 1}}, "max_concurrent_nodes": 0},
        }
    )
    assert len(found) == 4, found


def test_load_from_json_string_and_file(tmp_path: Path) -> None:
    data = {"name": "w", "nodes": {"a": {"type": "std/noop"}}}
    assert load(json.dumps(data)).name == "w"
    f = tmp_path / "w.conv3n.json"
    f.write_text(json.dumps(data))
    assert load(f).source == str(f)


def test_a_cycle_does_not_hide_expression_errors() -> None:
    data = {
        "name": "w",
        "nodes": {
            "a": {"type": "std/noop", "config": {"value": "{{ 1 + }}"}, "depends_on": ["b"]},
            "b": {"type": "std/noop", "depends_on": ["a"]},
        },
    }
    found = problems(data)
    assert any("cycle" in p for p in found)
    assert any(p.startswith("nodes.a.config.value") for p in found)


def test_alternatives_are_explained_and_typos_suggested() -> None:
    found = problems(
        {
            "name": "w",
            "nodes": {
                "a": {"type": "std/http_request", "config": {"url": "http://x", "method": "FETCH"}},
                "b": {"type": "std/transfrom"},
            },
        }
    )
    assert any("'FETCH' is not one of 'GET'" in p for p in found)
    assert any("did you mean 'std/transform'" in p for p in found)


def test_absurdly_deep_json_is_a_clear_problem(tmp_path: Path) -> None:
    f = tmp_path / "deep.conv3n.json"
    f.write_text(
        '{"name": "x", "nodes": {"a": {"type": "std/noop", "config": {"value": '
        + "[" * 50000
        + "]" * 50000
        + "}}}}"
    )
    with pytest.raises(WorkflowValidationError, match="nested too deeply"):
        load(f)


def test_yaml_workflows_load_like_json(tmp_path: Path) -> None:
    f = tmp_path / "w.conv3n.yaml"
    f.write_text(
        "name: w\nnodes:\n  a:\n    type: std/noop\n    config:\n      value: 3\n  b:\n    type: std/noop\n    depends_on: [a]\n"
    )
    wf = load(f)
    assert list(wf.nodes) == ["a", "b"]
    bad = tmp_path / "bad.conv3n.yaml"
    bad.write_text("name: w\nnodes: [unclosed\n")
    with pytest.raises(WorkflowValidationError, match="malformed YAML"):
        load(bad)
