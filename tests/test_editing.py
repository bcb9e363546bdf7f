"""Editing workflows from Python (validated, all-or-nothing) and saving with the file's layout."""

from __future__ import annotations

import difflib
import json
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3n_jupyter.editing import ordered_like, render_like
from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.errors import Conv3nError, WorkflowValidationError
from conv3n_jupyter.model import Workflow, load

from .strategies import json_values

TEMPLATES = sorted((Path(__file__).parent.parent / "templates").glob("*.conv3n.json"))


def chain() -> dict[str, Any]:
    """a → b by depends_on, a condition c after a with a port edge, a fallback, a group, a pin."""
    return {
        "conv3n": "1",
        "name": "chain",
        "nodes": {
            "a": {"type": "std/noop", "config": {"value": {"n": 1}}},
            "b": {"type": "std/noop", "depends_on": ["a"], "fallback": "spare"},
            "c": {"type": "std/condition", "config": {"expression": "$input.n > 0"}},
            "yes": {"type": "std/noop"},
            "spare": {"type": "std/noop", "config": {"value": "spare"}},
            "handler": {"type": "std/noop"},
        },
        "edges": [
            {"source": "a", "target": "c"},
            {"source": "c", "target": "yes", "sourceHandle": "true"},
        ],
        "groups": {"g": {"nodes": ["b", "yes"], "on_error": "handler"}},
        "config": {"pin": {"a": {"data": {"n": 5}}, "yes": {"data": 1}}},
    }


def plain() -> dict[str, Any]:
    """Two nodes wired only with depends_on (no explicit edges)."""
    return {
        "name": "plain",
        "nodes": {
            "a": {"type": "std/noop", "config": {"value": {"n": 1}}},
            "b": {"type": "std/noop", "depends_on": ["a"]},
        },
    }


class Calls:
    def __init__(self, wf: Workflow) -> None:
        self.count = 0
        wf._watchers.append(self)

    def __call__(self, wf: Workflow) -> None:
        self.count += 1


def refused(wf: Workflow, edit: Any, *words: str) -> WorkflowValidationError:
    """Run ``edit``, expect a validation error naming ``words``, and prove nothing changed."""
    before = json.dumps(wf.to_dict())
    nodes, watcher = dict(wf.nodes), Calls(wf)
    with pytest.raises(WorkflowValidationError) as info:
        edit()
    for word in words:
        assert word in str(info.value)
    assert json.dumps(wf.to_dict()) == before
    assert wf.nodes == nodes and watcher.count == 0
    return info.value


# -- add ------------------------------------------------------------------------------------


def test_add_after_uses_depends_on_in_a_workflow_without_edges() -> None:
    """A node added after another in a depends_on-only workflow is wired with depends_on."""
    wf = load(plain())
    node = wf.add("c", "std/noop", {"value": 2}, after="b", notes="new", timeout="2s")
    assert node is wf.nodes["c"] and node.depends_on == ["b"] and node.timeout == 2.0
    assert wf.to_dict()["nodes"]["c"] == {
        "type": "std/noop",
        "config": {"value": 2},
        "depends_on": ["b"],
        "timeout": "2s",
        "notes": "new",
    }
    assert "edges" not in wf.to_dict()


def test_add_with_port_or_in_a_workflow_with_edges_adds_edges() -> None:
    """A port, or a workflow already using edges, makes add() write explicit edges."""
    wf = load(chain())
    wf.add("no", "std/noop", after="c", port="false")
    wf.add("join", "std/noop", after=["yes", "no"])
    assert wf.to_dict()["edges"][-3:] == [
        {"source": "c", "target": "no", "sourceHandle": "false"},
        {"source": "yes", "target": "join"},
        {"source": "no", "target": "join"},
    ]
    assert wf.nodes["join"].depends_on == []
    wf2 = load(plain())
    wf2.add("c", "std/condition", {"expression": "true"}, after="b")
    wf2.add("d", "std/noop", after="c", port="true")
    assert wf2.to_dict()["edges"] == [{"source": "c", "target": "d", "sourceHandle": "true"}]


def test_add_to_list_shape_gives_edge_ids_and_a_free_position() -> None:
    """In the list shape a new node is appended with an id; edges get ids like their siblings."""
    wf = load(TEMPLATES[[p.name for p in TEMPLATES].index("list_shape.conv3n.json")])
    wf.add("report", "std/noop", after="hot")
    wf.add("report2", "std/noop", after="hot")
    data = wf.to_dict()
    assert data["nodes"][-2]["id"] == "report"
    assert data["edges"][-2:] == [
        {"id": "e-hot-report", "source": "hot", "target": "report"},
        {"id": "e-hot-report2", "source": "hot", "target": "report2"},
    ]
    hot = wf.nodes["hot"].position
    assert hot is not None
    assert wf.nodes["report"].position == {"x": hot["x"] + 260, "y": hot["y"]}
    assert wf.nodes["report2"].position == {"x": hot["x"] + 260, "y": hot["y"] + 160}


def test_add_refusals_name_the_node_and_change_nothing() -> None:
    """Duplicate id, unknown block, bad config, unknown port, unknown upstream: all refused."""
    wf = load(chain())
    refused(wf, lambda: wf.add("a", "std/noop"), "'a' already exists")
    refused(wf, lambda: wf.add("z", "std/nope"), "nodes.z.type", "std/nope")
    refused(wf, lambda: wf.add("z", "std/noop", {"bogus": 1}), "nodes.z.config", "bogus")
    refused(wf, lambda: wf.add("z", "std/noop", after="c", port="maybe"), "no port 'maybe'")
    refused(wf, lambda: wf.add("z", "std/noop", after="nope"), "no node 'nope'")
    refused(wf, lambda: wf.add("z", "std/noop", port="true"), "port given without after")
    refused(wf, lambda: wf.add("z", "std/noop", on_error="explode"), "nodes.z.on_error")


# -- remove ---------------------------------------------------------------------------------


def test_remove_drops_edges_depends_on_group_membership_and_pin() -> None:
    """Removing a node removes every reference the format keeps to it."""
    wf = load(chain())
    wf.remove("yes")
    data = wf.to_dict()
    assert "yes" not in wf.nodes
    assert data["edges"] == [{"source": "a", "target": "c"}]
    assert data["groups"]["g"] == {"nodes": ["b"], "on_error": "handler"}
    assert data["config"]["pin"] == {"a": {"data": {"n": 5}}}
    wf.remove("a")
    data = wf.to_dict()
    assert "depends_on" not in data["nodes"]["b"] and "edges" not in data
    assert "config" not in data


def test_remove_keeps_an_emptied_group_so_its_handler_stays_standby() -> None:
    """A group whose last member is removed is kept; its handler still never runs at the start."""
    wf = load(chain())
    wf.remove("yes")
    wf.configure("b", fallback=None)
    wf.remove("b")
    assert wf.groups["g"].nodes == [] and "handler" in wf.standby


def test_remove_refuses_fallbacks_handlers_referenced_and_unknown_nodes() -> None:
    """A fallback, a group handler, a node read by an expression or an unknown id is refused."""
    wf = load(chain())
    refused(wf, lambda: wf.remove("spare"), "the fallback of 'b'")
    refused(wf, lambda: wf.remove("handler"), "on_error handler of group 'g'")
    refused(wf, lambda: wf.remove("zzz"), "no node 'zzz'")
    wf.add("reader", "std/noop", {"value": "{{ $node.yes.data }}"}, after="yes")
    refused(wf, lambda: wf.remove("yes"), "nodes.reader.config", "unknown node 'yes'")


# -- connect / disconnect -------------------------------------------------------------------


def test_connect_adds_edges_and_refuses_cycles_ports_and_unknown_nodes() -> None:
    """connect() writes an edge with its handles; bad links are refused with the reason."""
    wf = load(chain())
    wf.add("no", "std/noop")
    wf.connect("c", "no", port="false", target_port="in")
    assert wf.to_dict()["edges"][-1] == {
        "source": "c",
        "target": "no",
        "sourceHandle": "false",
        "targetHandle": "in",
    }
    refused(wf, lambda: wf.connect("yes", "a"), "cycle", "a -> c -> yes -> a")
    refused(wf, lambda: wf.connect("a", "a"), "cycle")
    refused(wf, lambda: wf.connect("c", "no", port="perhaps"), "no port 'perhaps'")
    refused(wf, lambda: wf.connect("a", "ghost"), "no node 'ghost'")
    refused(wf, lambda: wf.connect("a", "spare"), "standby node")


def test_connect_twice_is_a_no_op_and_keeps_depends_on_style() -> None:
    """A link that exists (as an edge or as depends_on) is not added again; no notification."""
    wf = load(plain())
    wf.add("c", "std/noop")
    calls = Calls(wf)
    wf.connect("b", "c")
    assert wf.nodes["c"].depends_on == ["b"] and "edges" not in wf.to_dict()
    wf.connect("b", "c")
    wf.connect("a", "b")
    assert calls.count == 1 and wf.nodes["b"].depends_on == ["a"]


def test_disconnect_removes_edges_and_depends_on_and_counts_them() -> None:
    """disconnect() removes matching edges and depends_on entries; 0 when none matched."""
    wf = load(chain())
    wf.connect("a", "yes")
    assert wf.disconnect("c", "yes", port="false") == 0
    assert wf.disconnect("c", "yes", port="true") == 1
    assert wf.disconnect("a", "b") == 1 and wf.nodes["b"].depends_on == []
    assert wf.disconnect("a", "yes") == 1
    assert wf.disconnect("a", "yes") == 0 and wf.disconnect("ghost", "a") == 0
    assert [(e.source, e.target) for e in wf.all_edges] == [("a", "c")]
    wf.add("reader", "std/noop", {"value": "{{ $node.a.data }}"}, after="c")
    refused(wf, lambda: wf.disconnect("c", "reader"), "not upstream of 'reader'")


# -- configure ------------------------------------------------------------------------------


def test_configure_replaces_config_and_sets_or_removes_keys() -> None:
    """configure() replaces config wholesale; keyword keys are set, None removes them."""
    wf = load(chain())
    config = {"value": {"m": 2}}
    node = wf.configure("a", config, timeout="3s", notes="n", **{"x-color": "red"})
    config["value"]["m"] = 99  # the workflow keeps its own copy
    assert node.config == {"value": {"m": 2}} and node.timeout == 3.0
    assert node.extra == {"x-color": "red"} and node.notes == "n"
    node = wf.configure("a", timeout=None, notes=None)
    assert node.timeout is None and node.notes is None
    assert "timeout" not in wf.to_dict()["nodes"]["a"]
    assert wf.configure("a") is wf.nodes["a"]


def test_configure_refusals_change_nothing() -> None:
    """A bad config, a bad key, a rename or an unknown node is refused as a whole."""
    wf = load(chain())
    refused(wf, lambda: wf.configure("c", {"expression": 12}), "nodes.c.config.expression")
    refused(wf, lambda: wf.configure("a", {"value": 1}, retry={"max_attempts": 0}), "max_attempts")
    refused(wf, lambda: wf.configure("a", bogus=1), "unknown node key 'bogus'")
    refused(wf, lambda: wf.configure("a", id="b"), "renaming")
    refused(wf, lambda: wf.configure("nope", notes="x"), "no node 'nope'")


def test_watchers_are_told_once_per_edit_and_session_is_kept() -> None:
    """Each accepted edit notifies every watcher once; the watchers and session survive it."""
    wf = load(chain())
    session = object()
    wf._session = session
    calls = Calls(wf)
    watchers = wf._watchers
    wf.add("z", "std/noop", after="a")
    wf.configure("z", notes="hi")
    wf.connect("z", "yes")
    wf.disconnect("z", "yes")
    wf.remove("z")
    assert calls.count == 5
    assert wf._session is session and wf._watchers is watchers
    with pytest.raises(WorkflowValidationError):
        wf.remove("z")
    assert calls.count == 5


async def test_an_edited_workflow_runs_in_the_engine() -> None:
    """Nodes added and rewired from Python run with the engine like loaded ones."""
    wf = load(plain())
    wf.add("double", "std/transform", after="b")
    wf.configure(
        "double",
        {"operations": [{"type": "set", "values": {"twice": "{{ $item.n * 2 }}"}}]},
    )
    wf.add("check", "std/condition", {"expression": "$input.twice == 2"}, after="double")
    wf.add("ok", "std/noop", {"value": "yes"}, after="check", port="true")
    wf.add("bad", "std/noop", {"value": "no"}, after="check", port="false")
    result = await Execution(wf).run()
    assert result["status"] == "success"
    assert result["nodes"]["ok"]["data"] == "yes"
    assert result["nodes"]["bad"]["status"] == "skipped"


# -- save -----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_saving_an_unedited_template_is_byte_identical(template: Path, tmp_path: Path) -> None:
    """Every template saved over its own file comes out byte for byte the same."""
    copy = tmp_path / template.name
    shutil.copy(template, copy)
    load(copy).save()
    assert copy.read_bytes() == template.read_bytes()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_an_edit_changes_only_the_edited_lines(template: Path, tmp_path: Path) -> None:
    """Setting one key on one node adds one line and a comma; the rest of the file is kept."""
    copy = tmp_path / template.name
    shutil.copy(template, copy)
    wf = load(copy)
    first = next(iter(wf.nodes))
    wf.configure(first, **{"x-edited": True})
    wf.save()
    diff = [
        line
        for line in difflib.unified_diff(
            template.read_text().splitlines(), copy.read_text().splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert len([d for d in diff if d.startswith("+")]) == 2, diff
    assert len([d for d in diff if d.startswith("-")]) == 1, diff
    assert load(copy).to_dict() == wf.to_dict()


@pytest.mark.parametrize("indent", [2, 4, "\t"], ids=["2", "4", "tab"])
def test_indentation_style_is_kept(indent: int | str, tmp_path: Path) -> None:
    """A file written with 2 spaces, 4 spaces or tabs keeps that indentation after edits."""
    path = tmp_path / "w.conv3n.json"
    path.write_text(json.dumps(chain(), indent=indent) + "\n")
    wf = load(path)
    wf.add("d", "std/noop", {"value": [1, {"k": "v"}]}, after="yes", retry={"max_attempts": 2})
    wf.remove("c")
    wf.save()
    expected = ordered_like(wf.to_dict(), chain())
    assert path.read_text() == json.dumps(expected, indent=indent) + "\n"


def test_key_order_of_the_file_is_kept_and_new_keys_go_last(tmp_path: Path) -> None:
    """Keys keep their place in the file (at every depth); new keys are appended, removed ones
    go; a new node keeps its own key order (its siblings lend only their layout)."""
    path = tmp_path / "w.conv3n.json"
    text = (
        '{"nodes": {"b": {"depends_on": ["a"], "notes": "x", "type": "std/noop"},\n'
        '           "a": {"config": {"value": 1}, "type": "std/noop"}},\n'
        ' "name": "ordered", "x-ui": {"zoom": 2, "pan": [0, 0]}}'
    )
    path.write_text(text)
    wf = load(path)
    wf.configure("b", notes=None, timeout="1s")
    wf.add("c", "std/condition", {"expression": "true"})
    wf.connect("c", "a", port="true")
    wf.save()
    out = path.read_text()
    assert out == (
        '{"nodes": {"b": {"depends_on": ["a"], "type": "std/noop", "timeout": "1s"},\n'
        '           "a": {"config": {"value": 1}, "type": "std/noop"},\n'
        '           "c": {"type": "std/condition", "config": {"expression": "true"}}},\n'
        ' "name": "ordered", "x-ui": {"zoom": 2, "pan": [0, 0]},'
        ' "edges": [{"source": "c", "target": "a", "sourceHandle": "true"}]}'
    )
    assert list(json.loads(out)["nodes"]) == ["b", "a", "c"]


def test_unchanged_parts_are_copied_byte_for_byte_however_they_are_written(
    tmp_path: Path,
) -> None:
    """Odd spacing, number spellings and escapes survive in every part an edit did not touch."""
    path = tmp_path / "w.conv3n.json"
    odd_a = '"a": { "type" : "std/noop", "config": {"value": [1.50, 2E3, "\\u0041\\/"]} }'
    odd_edge = '{ "source":"a","target" : "c" }'
    path.write_text(
        '{\n  "name": "odd",\n  "nodes": {\n    ' + odd_a + ",\n"
        '    "b": {"type": "std/noop"},\n    "c": {"type": "std/noop"}\n  },\n'
        '  "edges": [\n    {"source": "a", "target": "b"},\n    ' + odd_edge + "\n  ]\n}\n"
    )
    wf = load(path)
    wf.disconnect("a", "b")
    wf.configure("b", notes="edited")
    wf.save()
    assert path.read_text() == (
        '{\n  "name": "odd",\n  "nodes": {\n    ' + odd_a + ",\n"
        '    "b": {"type": "std/noop", "notes": "edited"},\n    "c": {"type": "std/noop"}\n  },\n'
        '  "edges": [\n    ' + odd_edge + "\n  ]\n}\n"
    )


def test_escapes_line_endings_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    """An ASCII-escaped CRLF file without a final newline stays so after an edit."""
    path = tmp_path / "w.conv3n.json"
    data = plain()
    data["description"] = "café"
    path.write_bytes((json.dumps(data, indent=2)).replace("\n", "\r\n").encode())
    wf = load(path)
    wf.configure("b", notes="naïve")
    wf.save()
    raw = path.read_bytes()
    assert b"\\u00ef" in raw and b"\\u00e9" in raw and raw.isascii()
    assert raw.count(b"\r\n") == raw.count(b"\n") and not raw.endswith(b"\n")
    assert load(path).nodes["b"].notes == "naïve"
    path.write_text('{"name": "u", "description": "café", "nodes": {"a": {"type": "std/noop"}}}\n')
    wf = load(path)
    wf.configure("a", notes="naïve")
    wf.save()
    assert "naïve" in path.read_text(encoding="utf-8")


def test_yaml_is_written_in_file_order_and_left_alone_when_unchanged(tmp_path: Path) -> None:
    """YAML keeps its key order on save; an unedited save leaves the file (comments) untouched."""
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "w.conv3n.yaml"
    text = "# my workflow\nname: y\nnodes:\n    b:\n        type: std/noop\n        depends_on: [a]\n    a:\n        type: std/noop\n"
    path.write_text(text)
    wf = load(path)
    wf.save()
    assert path.read_text() == text
    wf.add("c", "std/noop", after="b", notes="café")
    wf.save()
    out = path.read_text(encoding="utf-8")
    assert list(yaml.safe_load(out)["nodes"]) == ["b", "a", "c"]
    assert "café" in out and "\n    b:\n        type: std/noop\n" in out
    assert load(path).to_dict() == wf.to_dict()


def test_yaml_without_pyyaml_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving YAML when PyYAML cannot be imported names the extra to install; nothing is written."""
    wf = load(plain())
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(Conv3nError, match=r"pip install 'conv3n-jupyter\[yaml\]'"):
        wf.save(tmp_path / "w.yaml")
    assert list(tmp_path.iterdir()) == []


def test_save_needs_a_path_refuses_directories_and_gives_a_dict_workflow_a_file(
    tmp_path: Path,
) -> None:
    """Without a file or a path save() refuses; a directory is refused; the path becomes the source."""
    wf = load(plain())
    with pytest.raises(Conv3nError, match="pass a path"):
        wf.save()
    with pytest.raises(Conv3nError, match="is a directory"):
        wf.save(tmp_path)
    path = wf.save(tmp_path / "new.conv3n.json")
    assert path == tmp_path / "new.conv3n.json" and wf.source == str(path)
    assert load(path).to_dict() == wf.to_dict()
    assert path.read_text().startswith('{\n  "conv3n": "1",\n  "name": "plain",\n')
    assert '"value": {"n": 1}\n' in path.read_text()  # small plain objects on one line
    assert '"depends_on": ["a"]\n' in path.read_text()
    wf.configure("a", {"value": 2})
    assert wf.save() == path and load(path).nodes["a"].config == {"value": 2}


def test_save_is_atomic_keeps_permissions_and_follows_symlinks(tmp_path: Path) -> None:
    """The file is replaced in one step, keeps its mode, and a symlink keeps pointing at it."""
    real = tmp_path / "real.conv3n.json"
    real.write_text(json.dumps(plain(), indent=2))
    real.chmod(0o640)
    link = tmp_path / "link.conv3n.json"
    link.symlink_to(real)
    wf = load(link)
    wf.configure("a", notes="via link")
    wf.save()
    assert link.is_symlink() and load(real).nodes["a"].notes == "via link"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.conv3n.json", "real.conv3n.json"]


def test_a_refused_edit_leaves_the_file_unchanged(tmp_path: Path) -> None:
    """After a refused edit, saving writes exactly the file that was loaded."""
    path = tmp_path / "w.conv3n.json"
    shutil.copy(TEMPLATES[0], path)
    before = path.read_bytes()
    wf = load(path)
    with pytest.raises(WorkflowValidationError):
        wf.add(next(iter(wf.nodes)), "std/noop")
    with pytest.raises(WorkflowValidationError):
        wf.configure(next(iter(wf.nodes)), {"nonsense": True})
    wf.save()
    assert path.read_bytes() == before


def test_an_unparseable_target_file_is_replaced_with_the_default_layout(tmp_path: Path) -> None:
    """Saving over a file that is not JSON writes the workflow fresh, with that file's indentation."""
    path = tmp_path / "w.conv3n.json"
    path.write_text("not json\n    at all\n")
    wf = load(plain())
    wf.save(path)
    assert load(path).to_dict() == wf.to_dict()
    assert '\n    "nodes": {' in path.read_text()


LAYOUTS = st.sampled_from(
    [
        {"indent": 2},
        {"indent": 4, "ensure_ascii": False},
        {"indent": "\t"},
        {},
        {"separators": (",", ":")},
    ]
)


@settings(max_examples=200, deadline=None)
@given(old=json_values, new=json_values, layout=LAYOUTS)
def test_any_value_written_over_any_file_reads_back_as_itself(
    old: Any, new: Any, layout: dict[str, Any]
) -> None:
    """Whatever the old file held and however it was laid out, the new text parses to the new value."""
    text = json.dumps(old, **layout) + "\n"
    assert render_like(old, text) == text
    out = render_like(new, text)
    assert json.loads(out) == new
    assert json.dumps(json.loads(out)) == json.dumps(ordered_like(new, old))
