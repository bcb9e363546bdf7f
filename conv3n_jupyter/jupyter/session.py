"""The notebook state of one workflow: pins, breakpoints, the last run, stale nodes, live views.

A :class:`Session` hangs off the :class:`~conv3n_jupyter.model.Workflow` object
(``wf._session``), so every graph, run and debugger of the same workflow object shares it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ..errors import Conv3nError

if TYPE_CHECKING:
    from ..model import Workflow
    from .debugger import Debugger
    from .graph import GraphView
    from .run import Run

PHASES = ("before", "after")


class Session:
    """Pins, breakpoints and history of one workflow in a notebook."""

    def __init__(self, wf: Workflow) -> None:
        self.workflow = wf
        self.pins: dict[str, dict[str, Any]] = {}
        self.breakpoints: dict[str, str] = {}
        for node in wf.nodes.values():
            if node.breakpoint:
                self.breakpoints[node.id] = (
                    node.breakpoint if node.breakpoint in PHASES else "before"
                )
        self.last: Run | None = None
        self.stale: set[str] = set()
        self.views: list[GraphView] = []
        self.debuggers: weakref.WeakSet[Debugger] = weakref.WeakSet()
        self._shape = _shape(wf)
        wf._watchers.append(self._on_edit)

    # -- pins -----------------------------------------------------------------------------
    def pin(self, node_id: str, data: Any = None, *, port: str = "default") -> None:
        self._check(node_id)
        self.pins[node_id] = {"port": port, "data": data}
        self.mark_stale(self.workflow.downstream(node_id))
        self.refresh()

    def unpin(self, node_id: str) -> None:
        self._check(node_id)
        if self.pins.pop(node_id, None) is not None:
            self.mark_stale(self.workflow.downstream(node_id) | {node_id})
            self.refresh()

    def all_pins(self) -> dict[str, dict[str, Any]]:
        """The file's ``config.pin`` overlaid with the pins set in this notebook."""
        pins = dict(self.workflow.config.get("pin", {}))
        pins.update(self.pins)
        return pins

    # -- breakpoints ------------------------------------------------------------------------
    def set_breakpoint(self, node_id: str, phase: str | None = "before") -> None:
        """Break ``before`` or ``after`` the node runs; ``None`` clears it."""
        self._check(node_id)
        if phase is None:
            self.breakpoints.pop(node_id, None)
        elif phase not in PHASES:
            raise Conv3nError(f"breakpoint phase must be 'before' or 'after', not {phase!r}")
        else:
            self.breakpoints[node_id] = phase
        self.refresh()

    # -- staleness --------------------------------------------------------------------------
    def mark_stale(self, ids: set[str]) -> None:
        if self.last is not None:
            self.stale |= {i for i in ids if i in self.last.nodes}

    def _on_edit(self, wf: Workflow) -> None:
        """After an edit, nodes whose definition changed (and their downstream) are stale."""
        before, after = self._shape, _shape(wf)
        changed = {n for n in after if before.get(n) != after[n]}
        touched: set[str] = set(changed)
        for n in changed:
            touched |= wf.downstream(n)
        self.stale = {n for n in self.stale if n in wf.nodes} | touched
        for gone in set(self.pins) - set(wf.nodes):
            del self.pins[gone]
        for gone in set(self.breakpoints) - set(wf.nodes):
            del self.breakpoints[gone]
        self._shape = after
        for view in list(self.views):
            view.rebuild()

    def refresh(self) -> None:
        for view in list(self.views):
            view.schedule()

    def _check(self, node_id: str) -> None:
        if node_id not in self.workflow.nodes:
            known = ", ".join(sorted(self.workflow.nodes)) or "none"
            raise Conv3nError(
                f"workflow {self.workflow.name!r} has no node {node_id!r} (nodes: {known})"
            )


def _shape(wf: Workflow) -> dict[str, Any]:
    """A comparable picture of each node's definition and incoming edges."""
    incoming: dict[str, list[Any]] = {n: [] for n in wf.nodes}
    for e in wf.all_edges:
        if e.target in incoming:
            incoming[e.target].append((e.source, e.source_handle, e.target_handle))
    return {
        nid: (node.type, repr(node.config), node.disabled, sorted(map(repr, incoming[nid])))
        for nid, node in wf.nodes.items()
    }


def session_of(wf: Workflow) -> Session:
    """The workflow's notebook session, created on first use."""
    session = wf._session
    if session is None:
        session = wf._session = Session(wf)
    return session  # type: ignore[no-any-return]
