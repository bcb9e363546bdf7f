"""Debug runs: breakpoints, stepping, stepping over a branch, aborting, edits at a pause."""

from __future__ import annotations

import asyncio

import pytest

from conv3n_jupyter.errors import Conv3nError, WorkflowValidationError
from conv3n_jupyter.jupyter.debugger import Debugger
from conv3n_jupyter.jupyter.session import session_of
from conv3n_jupyter.model import Workflow, parse

from .conftest import chain


def _order(dbg: Debugger) -> list[str]:
    return [nid for nid, nr in dbg.run.nodes.items() if nr.status == "success"]


async def test_breakpoint_pauses_before_the_node_until_continue(diamond_wf: Workflow) -> None:
    """A run pauses before the breakpoint node, upstream done, the node not yet run."""
    dbg = diamond_wf.debug(breakpoints=["join"])
    node = await dbg.paused()
    assert node is not None and node.id == "join" and node.status == "paused"
    assert dbg.phase == "before"
    assert dbg.run["left"].status == "success" and dbg.run["right"].status == "success"
    assert node.input == {"left": {"x": 2, "l": 20}, "right": {"x": 2, "r": 3}}
    assert dbg.graph.paused == "join" and dbg.graph.selected == "join"
    dbg.continue_()
    run = await dbg
    assert run.status == "success" and run["join"].output["sum"] == 23
    assert await dbg.paused() is None


async def test_step_runs_one_node_at_a_time() -> None:
    """Step pauses before each next node in order."""
    wf = parse(chain(4))
    dbg = wf.debug(breakpoints=["n0"])
    seen = []
    node = await dbg.paused()
    while node is not None:
        seen.append(node.id)
        dbg.step()
        node = await dbg.paused()
    assert seen == ["n0", "n1", "n2", "n3"]
    assert (await dbg).status == "success"


async def test_after_breakpoint_shows_output_and_can_edit_it(diamond_wf: Workflow) -> None:
    """An after-breakpoint pauses with the node's output, which may be replaced."""
    dbg = diamond_wf.debug(breakpoints={"left": "after"})
    node = await dbg.paused()
    assert node is not None and node.id == "left" and dbg.phase == "after"
    assert node.output == {"x": 2, "l": 20}
    dbg.edit_output({"x": 2, "l": 1000})
    dbg.continue_()
    run = await dbg
    assert run["join"].output["sum"] == 1003


async def test_edit_input_at_a_pause(diamond_wf: Workflow) -> None:
    """Editing the paused node's input is what the node then runs with."""
    dbg = diamond_wf.debug(breakpoints=["join"])
    await dbg.paused()
    dbg.edit_input({"left": {"l": 1}, "right": {"r": 2}})
    assert dbg.run["join"].input == {"left": {"l": 1}, "right": {"r": 2}}
    dbg.continue_()
    assert (await dbg)["join"].output["sum"] == 3


async def test_edit_config_at_a_pause_is_validated_and_used() -> None:
    """A config edit runs the node with it; an invalid config is refused and changes nothing."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "w",
            "params": {"ms": {"type": "integer", "default": 1}},
            "nodes": {
                "a": {"type": "std/noop"},
                "w": {
                    "type": "std/delay",
                    "depends_on": ["a"],
                    "config": {"duration": "{{ $params.ms }}ms"},
                },
            },
        }
    )
    dbg = wf.debug(breakpoints=["w"])
    await dbg.paused()
    with pytest.raises(WorkflowValidationError, match=r"nodes\.w\.config"):
        dbg.edit_config({"duration": "1ms", "bogus": 1})
    assert dbg.run["w"].resolved_config == {"duration": "1ms"}
    dbg.edit_config({"duration": "{{ $params.ms * 3 }}ms"})
    assert dbg.run["w"].resolved_config == {"duration": "3ms"}
    dbg.continue_()
    run = await dbg
    assert run.status == "success"
    assert wf.nodes["w"].config == {"duration": "{{ $params.ms }}ms"}  # the file is untouched


async def test_edits_need_a_pause_at_that_node(diamond_wf: Workflow) -> None:
    """Editing when not paused, or another node, is refused with the reason."""
    dbg = diamond_wf.debug(breakpoints=["join"])
    with pytest.raises(Conv3nError, match="not paused"):
        dbg.edit_input({})
    await dbg.paused()
    with pytest.raises(Conv3nError, match="paused at 'join', not 'left'"):
        dbg.edit_input({}, node_id="left")
    with pytest.raises(Conv3nError, match="after it runs"):
        dbg.edit_output({})
    dbg.continue_()
    await dbg


async def test_step_over_branch_skips_pauses_inside_it() -> None:
    """Step over runs the paused node's downstream without pausing, then pauses outside it."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "two_branches",
            "nodes": {
                "root": {"type": "std/noop"},
                "a1": {"type": "std/delay", "depends_on": ["root"], "config": {"duration": "1ms"}},
                "a2": {"type": "std/noop", "depends_on": ["a1"]},
                "b1": {"type": "std/delay", "depends_on": ["root"], "config": {"duration": "80ms"}},
                "b2": {"type": "std/noop", "depends_on": ["b1"]},
            },
        }
    )
    dbg = wf.debug(breakpoints=["a1"])
    assert (await dbg.paused()).id == "a1"  # type: ignore[union-attr]
    dbg.step_over()
    node = await dbg.paused()
    assert node is not None and node.id == "b1"
    for _ in range(100):  # the stepped-over branch finishes while b1 is paused
        if dbg.run["a2"].status == "success":
            break
        await asyncio.sleep(0.01)
    assert dbg.run["a2"].status == "success"
    while node is not None:
        dbg.step_over()
        node = await dbg.paused()
    assert (await dbg).status == "success"


async def test_all_stop_holds_other_branches(diamond_wf: Workflow) -> None:
    """While paused, no other node starts."""
    dbg = diamond_wf.debug(breakpoints=["left"])
    await dbg.paused()
    await asyncio.sleep(0.05)
    assert dbg.run["join"].status == "queued"
    dbg.continue_()
    await dbg


async def test_abort_cancels_a_paused_run(diamond_wf: Workflow) -> None:
    """Abort ends a paused run as cancelled and releases every waiting node."""
    dbg = diamond_wf.debug(breakpoints=["join"])
    await dbg.paused()
    dbg.abort()
    run = await dbg
    assert run.status == "cancelled"
    assert dbg.paused_at is None


async def test_toggle_breakpoint_and_session_sharing(diamond_wf: Workflow) -> None:
    """Breakpoints live in the workflow's session: toggling on/off, shared by later runs."""
    dbg = Debugger(diamond_wf, start=False)
    assert dbg.toggle_breakpoint("right") == "before"
    assert session_of(diamond_wf).breakpoints == {"right": "before"}
    assert dbg.toggle_breakpoint("right") is None
    with pytest.raises(Conv3nError, match="no node 'ghost'"):
        dbg.toggle_breakpoint("ghost")
    with pytest.raises(Conv3nError, match="phase must be"):
        Debugger(diamond_wf, breakpoints={"left": "during"}, start=False)


async def test_breakpoint_in_the_file_is_honoured() -> None:
    """A node with "breakpoint": true in the file pauses a debug run."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "b",
            "nodes": {
                "a": {"type": "std/noop"},
                "b": {"type": "std/noop", "depends_on": ["a"], "breakpoint": True},
            },
        }
    )
    dbg = wf.debug()
    assert (await dbg.paused()).id == "b"  # type: ignore[union-attr]
    dbg.continue_()
    await dbg


async def test_buttons_drive_the_run(diamond_wf: Workflow) -> None:
    """The Continue button resumes; buttons are enabled only when they make sense."""
    dbg = diamond_wf.debug(breakpoints=["left"])
    await dbg.paused()
    assert not dbg.buttons["continue"].disabled and dbg.buttons["restart"].disabled
    dbg.buttons["continue"].click()
    run = await dbg
    assert run.status == "success"
    assert dbg.buttons["continue"].disabled and not dbg.buttons["restart"].disabled
    dbg.buttons["step"].click()  # not paused: shows a message, raises nothing
    assert "not paused" in dbg.status.value


async def test_inspector_follows_the_pause(diamond_wf: Workflow) -> None:
    """At a pause the inspector shows the paused node; clicking another node shows that one."""
    dbg = diamond_wf.debug(breakpoints=["join"])
    await dbg.paused()
    assert "join" in dbg.inspector.header.value
    dbg.graph.select("left")
    assert "left" in dbg.inspector.header.value
    dbg.continue_()
    await dbg


async def test_run_from_here_restarts_from_the_node(diamond_wf: Workflow) -> None:
    """The inspector's Run from here re-runs that node and its downstream, reusing the rest."""
    dbg = diamond_wf.debug()
    await dbg
    dbg._on_action("run_from", "right")
    run = await dbg
    assert run["left"].reused and not run["right"].reused
    assert run.status == "success"


async def test_click_mode_toggles_breakpoints(diamond_wf: Workflow) -> None:
    """With the breakpoint toggle on, clicks cycle a node's breakpoint: before, after, none."""
    dbg = Debugger(diamond_wf, start=False)
    dbg.break_mode.value = True
    dbg.graph.select("right")
    assert session_of(diamond_wf).breakpoints == {"right": "before"}
    dbg.graph.select("right")
    assert session_of(diamond_wf).breakpoints == {"right": "after"}
    dbg.graph.select("right")
    assert session_of(diamond_wf).breakpoints == {}
    dbg.break_mode.value = False
    dbg.graph.select("right")
    assert session_of(diamond_wf).breakpoints == {}


async def test_a_long_pause_does_not_time_the_run_out() -> None:
    """The workflow's whole-run timeout does not count the time a debug run spends paused."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "t",
            "config": {"timeout": "100ms"},
            "nodes": {"a": {"type": "std/noop"}, "b": {"type": "std/noop", "depends_on": ["a"]}},
        }
    )
    dbg = wf.debug(breakpoints=["b"])
    await dbg.paused()
    await asyncio.sleep(0.3)
    dbg.continue_()
    assert (await dbg).status == "success"
    plain = await wf.run()  # a plain run keeps the file's timeout
    assert plain.execution.timeout == 0.1


async def test_a_new_debug_run_aborts_the_previous_paused_one(diamond_wf: Workflow) -> None:
    """Re-running a debug cell does not leave the earlier debug run paused forever."""
    first = diamond_wf.debug(breakpoints=["join"])
    await first.paused()
    second = diamond_wf.debug()  # the breakpoint on join belongs to the workflow: it stops too
    assert (await first).status == "cancelled"
    assert (await second.paused()).id == "join"  # type: ignore[union-attr]
    second.continue_()
    assert (await second).status == "success"
