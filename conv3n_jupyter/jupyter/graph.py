"""The live graph of a workflow: an ipycytoscape widget whose look follows the session.

    >>> view = wf.graph()            # or just display ``wf``
    >>> view.on_select(lambda node_id: print(node_id))

Node clicks select a node (``selected``) and call the ``on_select`` callbacks. Status changes
are batched: whatever happens in between, the widget receives at most ``max_fps`` stylesheet
updates per second (one comm message each), plus a final one when a run ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipycytoscape import CytoscapeWidget
from ipycytoscape import Edge as CyEdge
from ipycytoscape import Node as CyNode

from ..errors import Conv3nError
from . import _style
from ._fit import fit, install_autofit
from ._layout import layered_positions
from .inspector import Inspector
from .session import session_of

if TYPE_CHECKING:
    from ..model import Workflow
    from .run import NodeRun, Run

_RUN_DETAIL = {
    "queued": "queued",
    "running": "running…",
    "paused": "paused",
    "cancelled": "cancelled",
}


class GraphView(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A workflow as an interactive graph that animates while the workflow runs."""

    def __init__(
        self,
        wf: Workflow,
        *,
        run: Run | None = None,
        height: str | None = None,
        max_fps: float = 20.0,
        inspect: bool = True,
    ) -> None:
        self.workflow = wf
        self.session = session_of(wf)
        self.run = run  # None: follow the session's latest run
        self.selected: str | None = None
        self.paused: str | None = None
        self.min_interval = 1.0 / max_fps
        self.flushes = 0  # stylesheet updates sent (the batching tests read it)
        self._callbacks: list[Callable[[str], Any]] = []
        self._flush_callbacks: list[Callable[[], Any]] = []
        self._pending: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._last_style: list[dict[str, Any]] = []
        self.cyto = CytoscapeWidget(
            # No height by default: ipycytoscape's own 400px, the one size its first layout is
            # computed for; any other size is fitted once the view exists (install_autofit).
            layout=widgets.Layout(height=height, width="100%"),
            auto_unselectify=False,
            box_selection_enabled=False,
            wheel_sensitivity=0.3,
        )
        self.cyto.set_layout(name="preset", fit=True, padding=24, animate=False)
        self.cyto.on("node", "click", self._on_click)
        install_autofit(self.cyto)
        self.caption = widgets.HTML(layout=widgets.Layout(margin="0 0 0 6px"))
        self.inspector: Inspector | None = None
        self._shown: tuple[Any, ...] = ()  # what the inspector shows, to skip identical redraws
        top: Any = self.cyto
        if inspect:
            # Clicking a node opens its data beside the graph (hidden until the first click).
            self.inspector = Inspector(layout=widgets.Layout(display="none", min_width="320px"))
            self.inspector.add_class("c3-inspector")
            self.inspector.on_action = self._on_action
            self.inspector.layout.flex = "2 1 0%"
            # The graph keeps its 100% width inside its own flex cell.
            cell = widgets.VBox([self.cyto], layout=widgets.Layout(flex="3 1 0%", min_width="0"))
            top = widgets.HBox([cell, self.inspector], layout=widgets.Layout(width="100%"))
            self.on_select(self._inspect)
            self.on_flush(self._refresh_inspector)
        super().__init__([top, self.caption])
        self.add_class("c3-graph")
        self._build()
        self.session.views.append(self)
        self.flush()

    # -- elements -----------------------------------------------------------------------
    def _build(self) -> None:
        wf = self.workflow
        positions = layered_positions(wf)
        standby = wf.standby
        nodes = [
            CyNode(
                data={
                    "id": nid,
                    "label": f"{nid}\n{node.type.rsplit('/', 1)[-1]}",
                    "type": node.type,
                    "icon": _style.icon_for(node.type),
                },
                position=positions[nid],
            )
            for nid, node in wf.nodes.items()
        ]
        edges = []
        self._edge_ids: list[tuple[str, Any]] = []
        for i, e in enumerate(wf.all_edges):
            eid = f"e{i}"
            label = e.source_handle if e.source_handle not in (None, "default") else ""
            names = e.extra.get("x-names")
            if isinstance(names, list) and names:
                label = (label + " " if label else "") + ", ".join(map(str, names[:3]))
            edges.append(
                CyEdge(
                    data={"id": eid, "source": e.source, "target": e.target, "label": label},
                    classes="directed",
                )
            )
            self._edge_ids.append((eid, e))
        for node in wf.nodes.values():
            if node.fallback in wf.nodes:
                eid = f"fb_{node.id}"
                edges.append(
                    CyEdge(
                        data={
                            "id": eid,
                            "source": node.id,
                            "target": node.fallback,
                            "label": "fallback",
                        },
                        classes="directed standby",
                    )
                )
        graph = self.cyto.graph
        # ipycytoscape syncs its adjacency map once per node and an edge's classes once per
        # edge unless they are set up front and the changes held: one message instead of ~600.
        with self.cyto.hold_sync(), graph.hold_sync():
            graph.add_nodes(nodes)
            graph.add_edges(edges, directed=True)
        self._standby = standby

    def rebuild(self) -> None:
        """Re-create the elements after the workflow was edited."""
        self.cyto.graph.clear()
        self._last_style = []
        self._build()
        self.cyto.relayout()
        self.schedule()

    # -- clicks -------------------------------------------------------------------------
    def on_select(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(node_id)`` when a node is clicked."""
        self._callbacks.append(callback)

    def on_flush(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` after each batched update (a cheap place to refresh side panels)."""
        self._flush_callbacks.append(callback)

    def _on_click(self, data: dict[str, Any]) -> None:
        nid = (data.get("data") or {}).get("id")
        if nid in self.workflow.nodes:
            self.select(nid)

    def select(self, node_id: str) -> None:
        self.selected = node_id
        for cb in list(self._callbacks):
            cb(node_id)

    # -- state → stylesheet -------------------------------------------------------------
    def current_run(self) -> Run | None:
        return self.run if self.run is not None else self.session.last

    def schedule(self) -> None:
        """Ask for a stylesheet update; updates are coalesced to at most ``max_fps`` a second."""
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        # The first change after a quiet spell waits half a frame too, so that a run shorter
        # than that costs one update (its final state) instead of two.
        wait = max(self._last_flush + self.min_interval - time.monotonic(), self.min_interval / 2)
        self._pending = loop.call_later(wait, self._timer_flush)

    def _timer_flush(self) -> None:
        self._pending = None
        self.flush()

    def flush(self) -> None:
        """Send the current state now (one message), unless nothing changed."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._last_flush = time.monotonic()
        style = _style.base_style() + self._state_rules()
        if style != self._last_style:
            self._last_style = style
            self.cyto.cytoscape_style = style
            self.flushes += 1
        self.caption.value = self._caption()
        for cb in list(self._flush_callbacks):
            cb()

    def _state_rules(self) -> list[dict[str, Any]]:
        run = self.current_run()
        session = self.session
        status: dict[str, str] = {}
        labels: dict[str, str] = {}
        fired: list[str] = []
        pinned = {n for n in session.all_pins() if n in self.workflow.nodes}
        paused = self.paused
        if run is not None:
            nodes = run.nodes
            for nid, nr in nodes.items():
                if nid not in self.workflow.nodes:
                    continue
                status[nid] = nr.status
                detail = _detail(nr)
                if detail:
                    labels[nid] = f"{nid}\n{detail}"
            for eid, e in self._edge_ids:
                src = nodes.get(e.source)
                if (
                    src is not None
                    and src.status in ("success", "error")
                    and src.port is not None
                    and e.fires_on(src.port)
                    and e.target in nodes
                    and nodes[e.target].status not in ("queued", "skipped")
                ):
                    fired.append(eid)
            if paused is None:
                paused = run.paused_at
        for nid, phase in session.breakpoints.items():
            if nid in self.workflow.nodes and nid not in labels:
                labels[nid] = f"{nid}\nbreak {phase}"
        return _style.state_rules(
            status=status,
            labels=labels,
            pinned=pinned,
            stale={n for n in session.stale if n in self.workflow.nodes},
            breakpoints={n: p for n, p in session.breakpoints.items() if n in self.workflow.nodes},
            paused=paused,
            fired_edges=fired,
        )

    def _caption(self) -> str:
        run = self.current_run()
        wf = self.workflow
        parts = [f"<b>{_esc(wf.name)}</b> · {len(wf.nodes)} nodes"]
        if run is not None:
            done = sum(
                1 for n in run.nodes.values() if n.status not in ("queued", "running", "paused")
            )
            parts.append(f"run {_esc(run.status)} · {done}/{len(run.nodes)} done")
            if run.duration_ms is not None:
                parts.append(f"{run.duration_ms:,.0f} ms")
            if run.paused_at:
                parts.append(f"paused at <b>{_esc(run.paused_at)}</b>")
        if self.session.stale:
            parts.append(f"{len(self.session.stale)} stale")
        pins = self.session.all_pins()
        if pins:
            parts.append(f"{len(pins)} pinned")
        return '<span style="font-size:12px;color:#455a64">' + " · ".join(parts) + "</span>"

    # -- the inspector beside a plain graph --------------------------------------------
    def node_run(self, node_id: str) -> NodeRun:
        """The node as the graph shows it: from the run shown, or its definition if none."""
        run = self.current_run()
        if run is not None and node_id in run.nodes:
            return run.nodes[node_id]
        from .run import NodeRun

        node = self.workflow.nodes[node_id]
        return NodeRun(node_id, node.type, config=node.config)

    def _inspect(self, node_id: str) -> None:
        inspector = self.inspector
        if inspector is None:
            return
        if inspector.layout.display == "none":
            inspector.layout.display = "flex"
            fit(self.cyto)  # the graph just lost the inspector's width: fit it to what is left
        self._shown = ()
        self._refresh_inspector()

    def _refresh_inspector(self) -> None:
        inspector, nid = self.inspector, self.selected
        if inspector is None or nid is None or nid not in self.workflow.nodes:
            return
        nr = self.node_run(nid)
        pinned = nid in self.session.all_pins()
        phase = self.session.breakpoints.get(nid)
        key = (id(nr), nr.status, nr.attempts, len(nr.logs), pinned, phase)
        if key == self._shown:
            return
        self._shown = key
        inspector.show(nr, pinned=pinned, breakpoint=phase)

    def _on_action(self, action: str, node_id: str) -> None:
        session = self.session
        if action == "pin":
            run = self.current_run()
            nr = self.node_run(node_id)
            if run is None or nr.status != "success":
                raise Conv3nError(f"{node_id!r} has no output to pin yet: run the workflow first")
            run.pin(node_id)
        elif action == "unpin":
            session.unpin(node_id)
        elif action == "run_from":
            if self.run is not None:
                self.run = None  # follow the new run
            self.workflow.run(start_from=node_id)
        elif action in ("break_before", "break_after"):
            session.set_breakpoint(node_id, action.split("_", 1)[1])
        elif action == "clear_break":
            session.set_breakpoint(node_id, None)
        self._shown = ()
        self._refresh_inspector()

    def close(self) -> None:
        if self in self.session.views:
            self.session.views.remove(self)
        if self._pending is not None:
            self._pending.cancel()
        super().close()

    def __repr__(self) -> str:
        return f"<GraphView {self.workflow.name!r} {len(self.workflow.nodes)} nodes>"


def _detail(nr: NodeRun) -> str:
    if nr.pinned:
        return "pinned"
    if nr.reused:
        return "reused"
    if nr.status == "success":
        # Durations under a millisecond are noise on a node; the inspector has them.
        took = (
            f"{nr.duration_ms:,.0f} ms"
            if nr.duration_ms is not None and nr.duration_ms >= 1
            else ""
        )
        port = f"→ {nr.port}" if nr.port not in (None, "default") else ""
        tries = f"{nr.attempts} tries" if nr.attempts > 1 else ""
        return " · ".join(p for p in (took, port, tries) if p)
    if nr.status == "error":
        port = " → error port" if nr.port == "error" else ""
        return f"error{port}"
    if nr.status == "skipped":
        return "skipped"
    if nr.status == "running" and nr.attempts > 1:
        return f"running (try {nr.attempts})"
    return _RUN_DETAIL.get(nr.status, "")


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
