"""The live graph widget: elements, positions, batched status updates, clicks, edits."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from conv3n_jupyter.errors import Conv3nError
from conv3n_jupyter.jupyter import _style
from conv3n_jupyter.jupyter._layout import layered_positions
from conv3n_jupyter.jupyter.graph import GraphView
from conv3n_jupyter.model import Workflow, load, parse

from .conftest import chain, fan


def _rules_for(view: GraphView, node_id: str) -> list[dict[str, Any]]:
    sel = _style.selector([node_id])
    return [
        r for r in view.cyto.cytoscape_style if sel in [s.strip() for s in r["selector"].split(",")]
    ]


def test_elements_mirror_the_workflow(diamond_wf: Workflow) -> None:
    """Every node and edge becomes a cytoscape element with its type and an icon."""
    view = GraphView(diamond_wf)
    ids = [n.data["id"] for n in view.cyto.graph.nodes]
    assert ids == ["start", "left", "right", "join"]
    assert all(
        n.data["icon"].startswith("data:image/svg+xml;base64,") for n in view.cyto.graph.nodes
    )
    pairs = {(e.data["source"], e.data["target"]) for e in view.cyto.graph.edges}
    assert pairs == {("start", "left"), ("start", "right"), ("left", "join"), ("right", "join")}
    assert view.cyto.cytoscape_layout["name"] == "preset"


def test_port_edges_are_labelled() -> None:
    """Edges leaving a non-default port carry the port name as their label."""
    wf = load("templates/order_router.conv3n.json")
    view = GraphView(wf)
    labels = {(e.data["source"], e.data["target"]): e.data["label"] for e in view.cyto.graph.edges}
    assert "vip" in labels.values()


def test_layered_layout_ranks_left_to_right(diamond_wf: Workflow) -> None:
    """Each node sits right of its upstream; siblings share a column at different heights."""
    pos = layered_positions(diamond_wf)
    assert pos["start"]["x"] < pos["left"]["x"] == pos["right"]["x"] < pos["join"]["x"]
    assert pos["left"]["y"] != pos["right"]["y"]


def test_layout_keeps_positions_from_the_file() -> None:
    """A node with a position in the file is drawn there."""
    data = {
        "conv3n": "1",
        "name": "p",
        "nodes": {"a": {"type": "std/noop", "position": {"x": 7, "y": 9}}},
    }
    assert layered_positions(parse(data)) == {"a": {"x": 7.0, "y": 9.0}}


def _bounds(pos: dict[str, dict[str, float]]) -> tuple[float, float]:
    xs = [p["x"] for p in pos.values()]
    ys = [p["y"] for p in pos.values()]
    return max(xs) - min(xs) + 190, max(ys) - min(ys) + 80


def test_layout_of_500_nodes_is_screen_shaped() -> None:
    """A 500-node chain is wrapped into bands of a screen-like shape, no two nodes overlapping."""
    wf = parse(chain(500))
    pos = layered_positions(wf)
    assert len(pos) == 500 and len({(p["x"], p["y"]) for p in pos.values()}) == 500
    width, height = _bounds(pos)
    assert 1 <= width / height <= 5


def test_wide_fan_is_split_into_columns() -> None:
    """200 siblings are not one 16,000-pixel column: the layout stays screen-shaped."""
    wf = parse(fan(200))
    pos = layered_positions(wf)
    width, height = _bounds(pos)
    assert 0.5 <= width / height <= 5
    assert pos["start"]["x"] < min(pos[f"d{i}"]["x"] for i in range(200)) < pos["join"]["x"]


async def test_run_colours_nodes_through_the_stylesheet(diamond_wf: Workflow) -> None:
    """After a run each node's rule carries its status colour and a timing label."""
    view = GraphView(diamond_wf)
    run = await diamond_wf.run()
    assert run.status == "success"
    rules = _rules_for(view, "join")
    assert any(r["style"].get("background-color") == _style.COLORS["success"] for r in rules)
    assert not any("label" in r["style"] for r in rules)  # sub-millisecond: no timing drawn
    assert "4/4 done" in view.caption.value


async def test_slow_nodes_and_ports_are_labelled() -> None:
    """A node that took a millisecond or more shows its duration; a port shows where it went."""
    wf = parse(chain(1, delay="20ms"))
    view = GraphView(wf)
    await wf.run()
    labels = [r["style"]["label"] for r in _rules_for(view, "wait") if "label" in r["style"]]
    assert labels and labels[0].startswith("wait\n") and labels[0].endswith(" ms")
    router = load("templates/order_router.conv3n.json")
    rview = GraphView(router)
    await router.run()
    route = [r["style"]["label"] for r in _rules_for(rview, "route") if "label" in r["style"]]
    assert route == ["route\n→ vip"]


async def test_status_updates_are_batched_not_per_node() -> None:
    """A 200-node run changes no element widget and sends at most ~20 stylesheets a second."""
    wf = parse(chain(200, delay="300ms"))
    view = GraphView(wf)
    element_changes: list[str] = []
    for el in [*view.cyto.graph.nodes, *view.cyto.graph.edges]:
        el.observe(lambda ch: element_changes.append(ch["name"]), names=["classes", "data"])
    styles: list[float] = []
    view.cyto.observe(lambda _ch: styles.append(time.monotonic()), names=["cytoscape_style"])
    t0 = time.monotonic()
    run = await wf.run()
    elapsed = time.monotonic() - t0
    assert run.status == "success" and run.events > 400
    assert element_changes == []
    assert 1 <= len(styles) <= elapsed * 20 + 3
    gaps = [b - a for a, b in itertools.pairwise(styles[:-1])]  # the final flush is immediate
    assert all(g >= 0.045 for g in gaps), gaps
    final = _rules_for(view, "wait")
    assert any(r["style"].get("background-color") == _style.COLORS["success"] for r in final)


async def test_unchanged_state_sends_nothing(diamond_wf: Workflow) -> None:
    """Flushing twice without a change sends one stylesheet."""
    view = GraphView(diamond_wf)
    before = view.flushes
    view.flush()
    view.flush()
    assert view.flushes == before


def test_click_selects_and_calls_back(diamond_wf: Workflow) -> None:
    """A click message from the frontend selects the node and calls on_select callbacks."""
    view = GraphView(diamond_wf)
    seen: list[str] = []
    view.on_select(seen.append)
    view.cyto._handle_interaction(
        view.cyto, {"event": "click", "widget": "node", "data": {"data": {"id": "left"}}}, []
    )
    assert seen == ["left"] and view.selected == "left"
    view.cyto._handle_interaction(
        view.cyto, {"event": "click", "widget": "node", "data": {"data": {"id": "ghost"}}}, []
    )
    assert seen == ["left"]


def test_edit_rebuilds_the_graph(diamond_wf: Workflow) -> None:
    """Adding a node to the workflow shows it in every live view."""
    view = GraphView(diamond_wf)
    diamond_wf.add("tail", "std/noop", after="join")
    assert "tail" in [n.data["id"] for n in view.cyto.graph.nodes]
    assert ("join", "tail") in {(e.data["source"], e.data["target"]) for e in view.cyto.graph.edges}


def test_pins_breakpoints_and_stale_marks_show(diamond_wf: Workflow) -> None:
    """Pinned, breakpoint and stale nodes get their own rules."""
    from conv3n_jupyter.jupyter.session import session_of

    view = GraphView(diamond_wf)
    session = session_of(diamond_wf)
    session.pin("left", {"l": 1})
    session.set_breakpoint("join", "after")
    view.flush()
    assert any(r["style"].get("border-style") == "double" for r in _rules_for(view, "left"))
    assert any(r["style"].get("border-style") == "dotted" for r in _rules_for(view, "join"))
    assert any("break after" in r["style"].get("label", "") for r in _rules_for(view, "join"))


def test_selector_escapes_odd_ids() -> None:
    """Ids with dashes are escaped for cytoscape's selector grammar."""
    assert _style.selector(["fetch-data", "a_b"]) == "#fetch\\-data, #a_b"


def test_workflow_displays_as_the_graph(diamond_wf: Workflow) -> None:
    """A workflow's rich display is the graph widget."""
    bundle = diamond_wf._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


async def test_views_of_earlier_runs_are_left_alone(diamond_wf: Workflow) -> None:
    """A graph bound to an earlier run is not redrawn by later runs (re-running a cell many
    times does not make every run pay for every old output)."""
    first = await diamond_wf.run()
    old_view = GraphView(diamond_wf, run=first)
    live_view = GraphView(diamond_wf)
    calls: dict[str, int] = {"old": 0, "live": 0}
    for name, view in (("old", old_view), ("live", live_view)):
        original = view.flush

        def counted(original: Any = original, name: str = name) -> None:
            calls[name] += 1
            original()

        view.flush = counted  # type: ignore[method-assign]
    await diamond_wf.run(params={"x": 5})
    assert calls["old"] == 0
    assert calls["live"] >= 1


def test_missing_extra_names_the_pip_command(tmp_path: Any) -> None:
    """Without ipywidgets, asking for the graph says which extra to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import conv3n_jupyter as c3\n"
        "wf = c3.load('templates/hello.conv3n.json')\n"
        "try:\n    wf.graph()\nexcept ImportError as exc:\n    print(exc)\n"
        "print(repr(wf._repr_mimebundle_()['text/plain']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'conv3n-jupyter[jupyter]'" in out.stdout
    assert "<Workflow 'hello'" in out.stdout


def _click(view: GraphView, node_id: str) -> None:
    view.cyto._handle_interaction(
        view.cyto, {"event": "click", "widget": "node", "data": {"data": {"id": node_id}}}, []
    )


async def test_clicking_a_node_of_a_plain_graph_opens_its_data(diamond_wf: Workflow) -> None:
    """A displayed workflow or run shows the clicked node's data beside the graph."""
    view = GraphView(diamond_wf)
    assert view.inspector is not None and view.inspector.layout.display == "none"
    _click(view, "left")  # before any run: the node's definition
    assert view.inspector.layout.display == "flex"
    assert "left" in view.inspector.header.value and "queued" in view.inspector.header.value
    await diamond_wf.run(params={"x": 4})
    assert "success" in view.inspector.header.value  # refreshed by the run's last update
    assert view.node_run("left").output == {"x": 4, "l": 40}


async def test_plain_graph_inspector_actions(diamond_wf: Workflow) -> None:
    """Pin, breakpoints and Run from here work from a plain graph's inspector."""
    from conv3n_jupyter.jupyter.session import session_of

    view = GraphView(diamond_wf)
    _click(view, "left")
    with pytest.raises(Conv3nError, match="no output to pin yet"):
        view._on_action("pin", "left")
    await diamond_wf.run()
    view._on_action("pin", "left")
    assert session_of(diamond_wf).pins["left"]["data"] == {"x": 2, "l": 20}
    view._on_action("break_after", "join")
    assert session_of(diamond_wf).breakpoints == {"join": "after"}
    view._on_action("run_from", "right")
    run = await session_of(diamond_wf).last  # type: ignore[misc]
    assert run["start"].reused and not run["right"].reused


def test_debugger_graph_has_no_second_inspector(diamond_wf: Workflow) -> None:
    """Inside the debugger the graph leaves inspection to the debugger's own inspector."""
    from conv3n_jupyter.jupyter.debugger import Debugger

    dbg = Debugger(diamond_wf, start=False)
    assert dbg.graph.inspector is None
