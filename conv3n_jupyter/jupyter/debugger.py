"""Debug runs: breakpoints, Continue / Step / Step over branch / Abort, edits at a pause.

    >>> dbg = wf.debug(breakpoints=["transform"])   # display it: graph, inspector, controls
    >>> node = await dbg.paused()                    # the NodeRun it stopped at
    >>> dbg.edit_input({"rows": []}); dbg.step()
    >>> run = await dbg                              # the finished Run

All-stop semantics: while the run is paused, every other node that is about to start (or has
just finished, for ``after`` breakpoints) waits too, so what the graph shows holds still. The
run lives on the kernel's event loop: a paused run does not block the notebook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..errors import Conv3nError
from ._gate import Pause, PauseGate
from .graph import GraphView
from .run import NodeRun, Run
from .session import PHASES, session_of

if TYPE_CHECKING:
    from ..model import Workflow


class Debugger(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A debug run of a workflow with its graph, inspector and controls."""

    def __init__(
        self,
        wf: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        breakpoints: Any = None,
        start: bool = True,
        **run_kwargs: Any,
    ) -> None:
        self.workflow = wf
        self.session = session_of(wf)
        self.params = dict(params or {})
        # Time spent paused is the user's: the workflow's whole-run timeout does not apply to a
        # debug run unless one is given here (node timeouts still apply to each attempt).
        run_kwargs.setdefault("timeout", 0)
        self._run_kwargs = run_kwargs
        for nid, phase in _normalise(breakpoints).items():
            self.session.set_breakpoint(nid, phase)
        self.gate = PauseGate(self.session.breakpoints, wf.downstream, self._on_pause)
        self._waiters: list[asyncio.Future[NodeRun | None]] = []
        self.message = ""
        self.run = self._new_run(start_from=run_kwargs.pop("start_from", None))
        self._build_ui()
        if start:
            self.start()

    # -- runs ---------------------------------------------------------------------------
    def _new_run(self, start_from: str | None = None) -> Run:
        return Run(
            self.workflow, self.params, debugger=self, start_from=start_from, **self._run_kwargs
        )

    def start(self) -> Debugger:
        """Start the run on the running event loop (done at creation when a loop runs)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self
        if self.run.task is None:
            # One debug run per workflow at a time: re-running a debug cell must not leave the
            # previous run paused forever, holding its nodes.
            for other in list(self.session.debuggers):
                if other is not self and other.running:
                    other.abort()
            self.session.debuggers.add(self)
            self.run.start()
            assert self.run.task is not None
            self.run.task.add_done_callback(lambda _t: self._finished())
        return self

    @property
    def running(self) -> bool:
        """Whether this debugger's run started and has not ended."""
        return self.run.task is not None and not self.run.task.done()

    def restart(self, *, start_from: str | None = None) -> Run:
        """A new debug run (from ``start_from``, reusing the last results upstream of it)."""
        if self.run.task is not None and not self.run.task.done():
            raise Conv3nError("the current debug run is still going: continue or abort it first")
        self.gate.reset()
        self.run = self._new_run(start_from=start_from)
        self.graph.run = self.run
        self.start()
        self._refresh()
        return self.run

    def __await__(self) -> Generator[Any, None, Run]:
        return self.run.__await__()

    # -- the engine's hooks -------------------------------------------------------------
    async def before_node(self, execution: Any, node: Any, ctx: Any) -> None:
        await self.gate.hook(node.id, "before", ctx, None)

    async def after_node(self, execution: Any, node: Any, ctx: Any, result: dict[str, Any]) -> None:
        await self.gate.hook(node.id, "after", ctx, result)

    def _on_pause(self, pause: Pause) -> None:
        self.run.paused_at = pause.node_id
        nr = self.run.nodes[pause.node_id]
        if pause.phase == "before":
            nr.status = "paused"
        elif pause.result is not None:
            nr.output = pause.result.get("data")
            nr.port = pause.result.get("port")
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(nr)
        self._waiters.clear()
        self.graph.select(pause.node_id)
        self._refresh()

    def _finished(self) -> None:
        self.gate.release_all()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        self._refresh()

    # -- controls -----------------------------------------------------------------------
    @property
    def paused_at(self) -> NodeRun | None:
        """The node the run is paused at, or None."""
        cur = self.gate.current
        return None if cur is None else self.run.nodes[cur.node_id]

    @property
    def phase(self) -> str | None:
        """``before`` or ``after``: where in the paused node's run the pause is."""
        cur = self.gate.current
        return None if cur is None else cur.phase

    async def paused(self, timeout: float | None = 30.0) -> NodeRun | None:
        """Wait for the next pause; returns its node, or None when the run ended instead."""
        if self.gate.current is not None:
            return self.run.nodes[self.gate.current.node_id]
        if self.run.task is not None and self.run.task.done():
            return None
        if self.run.task is None:
            self.start()
        waiter: asyncio.Future[NodeRun | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await asyncio.wait_for(waiter, timeout)

    def continue_(self) -> None:
        """Run on to the next breakpoint."""
        self._resume("run")

    def step(self) -> None:
        """Let the paused node go and pause before the next node that starts."""
        self._resume("step")

    def step_over(self) -> None:
        """Run the paused node and its whole downstream branch; pause at the next node outside it
        (breakpoints inside the branch still stop)."""
        self._resume("step_over")

    def abort(self) -> None:
        """Stop the run: running and waiting nodes are cancelled."""
        self.run.cancel()
        self.gate.release_all()
        self.run.paused_at = None

    def _resume(self, mode: str) -> None:
        cur = self.gate.current
        if cur is None:
            raise Conv3nError("the debug run is not paused")
        self.run.paused_at = None
        nr = self.run.nodes[cur.node_id]
        if nr.status == "paused":
            nr.status = "running"
        self.gate.resume(mode)  # may begin the next pause, which refreshes
        if self.gate.current is None:
            self._refresh()

    # -- edits at a pause -----------------------------------------------------------------
    def _paused_rec(self, nid: str | None, phase: str) -> Pause:
        cur = self.gate.current
        if cur is None:
            raise Conv3nError("the debug run is not paused: edits apply to the paused node")
        if nid is not None and nid != cur.node_id:
            raise Conv3nError(f"the run is paused at {cur.node_id!r}, not {nid!r}")
        if cur.phase != phase:
            what = "input and config" if phase == "before" else "output"
            raise Conv3nError(f"a node's {what} can be edited only at a pause {phase} it runs")
        return cur

    def edit_input(self, value: Any, node_id: str | None = None) -> None:
        """Replace the paused node's input (its config expressions are resolved again)."""
        cur = self._paused_rec(node_id, "before")
        _resolve_with(cur.ctx, input=value)
        nr = self.run.nodes[cur.node_id]
        nr.input, nr.resolved_config = value, cur.ctx.config
        self._refresh()

    def edit_config(
        self, config: dict[str, Any], node_id: str | None = None, *, save: bool = False
    ) -> None:
        """Run the paused node with this (raw) config; ``save=True`` also edits the workflow."""
        from ..editing import _node_dicts
        from ..model import parse

        cur = self._paused_rec(node_id, "before")
        if not isinstance(config, dict):
            raise Conv3nError(
                f"node {cur.node_id!r}: config must be a JSON object, not {type(config).__name__}"
            )
        data = self.workflow.to_dict()
        _node_dicts(data)[cur.node_id]["config"] = config
        new_node = parse(data, self.workflow.source).nodes[cur.node_id]  # validates the config
        _resolve_with(cur.ctx, node=new_node)
        nr = self.run.nodes[cur.node_id]
        nr.config, nr.resolved_config = config, cur.ctx.config
        if save:
            self.workflow.configure(cur.node_id, config)
        self._refresh()

    def edit_output(self, value: Any, node_id: str | None = None) -> None:
        """At an ``after`` pause: replace what the node passes downstream."""
        cur = self._paused_rec(node_id, "after")
        assert cur.result is not None
        cur.result["data"] = value
        self.run.nodes[cur.node_id].output = value
        self._refresh()

    def toggle_breakpoint(self, node_id: str, phase: str = "before") -> str | None:
        """Set a breakpoint, or clear it if the node already has one; returns the new phase."""
        new = None if self.session.breakpoints.get(node_id) == phase else phase
        self.session.set_breakpoint(node_id, new)
        self._refresh()
        return new

    # -- UI ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        from .inspector import Inspector

        def button(desc: str, icon: str, tip: str, action: Any, style: str = "") -> widgets.Button:
            b = widgets.Button(description=desc, icon=icon, tooltip=tip, button_style=style)
            b.layout.width = "auto"
            b.on_click(lambda _b: self._ui(action))
            return b

        self.buttons = {
            "continue": button(
                "Continue", "play", "Run to the next breakpoint", self.continue_, "success"
            ),
            "step": button("Step", "step-forward", "Run the next node, then pause", self.step),
            "step_over": button(
                "Step over branch",
                "forward",
                "Run this node's branch without pausing",
                self.step_over,
            ),
            "abort": button("Abort", "stop", "Cancel the run", self.abort, "danger"),
            "restart": button("Run again", "refresh", "Start a new debug run", self.restart),
        }
        self.break_mode = widgets.ToggleButton(
            description="Click sets breakpoint",
            icon="circle",
            value=False,
            tooltip="When on, each click on a node cycles its breakpoint: before, after, none",
        )
        self.break_mode.layout.width = "auto"
        self.status = widgets.HTML()
        self.status.add_class("c3-status")
        self.graph = GraphView(self.workflow, run=self.run, inspect=False)
        self.graph.on_select(self._on_select)
        self.graph.on_flush(self._on_flush)
        self.inspector = Inspector()
        self.inspector.add_class("c3-inspector")
        self.inspector.on_action = self._on_action
        self.inspector.on_edit = self._on_edit
        self.graph.layout.flex = "3 1 0%"
        self.inspector.layout.flex = "2 1 0%"
        self.inspector.layout.min_width = "320px"
        controls = widgets.HBox([*self.buttons.values(), self.break_mode, self.status])
        controls.layout.flex_flow = "row wrap"
        super().__init__([controls, widgets.HBox([self.graph, self.inspector])])
        self.add_class("c3-debugger")
        self._shown: tuple[Any, ...] | None = None
        self._refresh()

    def _ui(self, action: Any) -> None:
        try:
            action()
            self.message = ""
        except Conv3nError as exc:
            self.message = str(exc)
        self._refresh()

    def _on_select(self, node_id: str) -> None:
        if self.break_mode.value:
            # Each click moves the node's breakpoint on: none → before → after → none.
            now = self.session.breakpoints.get(node_id)
            self.session.set_breakpoint(node_id, {None: "before", "before": "after"}.get(now))
        self._show(force=True)

    def _on_flush(self) -> None:
        self._show()
        self._update_controls()

    def _on_action(self, action: str, node_id: str) -> None:
        try:
            if action == "pin":
                self.run.pin(node_id)
            elif action == "unpin":
                self.session.unpin(node_id)
            elif action == "run_from":
                self.restart(start_from=node_id)
            elif action in ("break_before", "break_after"):
                self.session.set_breakpoint(node_id, action.split("_")[1])
            elif action == "clear_break":
                self.session.set_breakpoint(node_id, None)
            self.message = ""
        except Conv3nError as exc:
            self.message = str(exc)
        self._refresh()

    def _on_edit(self, node_id: str, kind: str, value: Any) -> None:
        if kind == "input":
            self.edit_input(value, node_id)
        elif kind == "config":
            self.edit_config(value, node_id)
        elif kind == "output":
            self.edit_output(value, node_id)

    def _refresh(self) -> None:
        if not hasattr(self, "graph"):
            return
        self.graph.paused = None if self.gate.current is None else self.gate.current.node_id
        self.graph.schedule()
        self._show(force=True)
        self._update_controls()

    def _update_controls(self) -> None:
        paused = self.gate.current is not None
        running = self.run.task is not None and not self.run.task.done()
        for key in ("continue", "step", "step_over"):
            self.buttons[key].disabled = not paused
        self.buttons["abort"].disabled = not running
        self.buttons["restart"].disabled = running
        if paused:
            assert self.gate.current is not None
            state = f"paused {self.gate.current.phase} <b>{_esc(self.gate.current.node_id)}</b>"
        elif running:
            state = "running…"
        else:
            state = f"run {_esc(self.run.status)}"
        msg = f' · <span style="color:#c62828">{_esc(self.message)}</span>' if self.message else ""
        self.status.value = f'<span style="font-size:13px">{state}{msg}</span>'

    def _show(self, force: bool = False) -> None:
        nid = self.graph.selected
        if nid is None or nid not in self.run.nodes:
            return
        nr = self.run.nodes[nid]
        paused = self.gate.current is not None and self.gate.current.node_id == nid
        key = (
            nid,
            nr.status,
            nr.attempts,
            len(nr.logs),
            nr.port,
            paused,
            self.session.breakpoints.get(nid),
            nid in self.session.all_pins(),
        )
        if not force and key == self._shown:
            return
        self._shown = key
        self.inspector.show(
            nr,
            pinned=nid in self.session.all_pins(),
            breakpoint=self.session.breakpoints.get(nid),
            paused=paused and self.gate.current is not None and self.gate.current.phase == "before",
        )

    def __repr__(self) -> str:
        where = f" paused {self.phase} {self.gate.current.node_id}" if self.gate.current else ""
        return f"<Debugger {self.workflow.name!r} {self.run.status}{where}>"


def _resolve_with(ctx: Any, **attrs: Any) -> None:
    """Set the paused node's context attributes and resolve its config again; if that fails,
    the context is left as it was."""
    old = {name: getattr(ctx, name) for name in attrs}
    old_scope = ctx._scope
    for name, value in attrs.items():
        setattr(ctx, name, value)
    ctx._scope = None  # the scope caches the input
    try:
        ctx.config = ctx.resolve_config()
    except BaseException:
        for name, value in old.items():
            setattr(ctx, name, value)
        ctx._scope = old_scope
        raise


def _normalise(breakpoints: Any) -> dict[str, str]:
    if breakpoints is None:
        return {}
    if isinstance(breakpoints, str):
        return {breakpoints: "before"}
    if isinstance(breakpoints, Mapping):
        out = {}
        for nid, phase in breakpoints.items():
            if phase not in PHASES:
                raise Conv3nError(
                    f"breakpoint on {nid!r}: phase must be 'before' or 'after', not {phase!r}"
                )
            out[str(nid)] = str(phase)
        return out
    return {str(nid): "before" for nid in breakpoints}


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
