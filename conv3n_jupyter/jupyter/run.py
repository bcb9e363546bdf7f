"""What a notebook run keeps per node: :class:`NodeRun`, and the :class:`Run` handle."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Conv3nError

if TYPE_CHECKING:
    from ..engine.events import Event
    from ..model import Workflow


@dataclass(slots=True)
class NodeRun:
    """One node of one run, as the inspector shows it.

    ``status`` is one of ``queued running paused success error skipped cancelled`` (``queued``
    before the node started). ``config`` is the node's raw config from the file;
    ``resolved_config`` is the config after expressions (``None`` until the node started).
    """

    id: str
    type: str
    status: str = "queued"
    port: str | None = None
    input: Any = None
    output: Any = None
    attempts: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    started_at: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    # What the engine resolved, converted to JSON on first read (kept cheap while running).
    resolved: Any = field(default=None, repr=False)
    pinned: bool = False
    reused: bool = False
    stale: bool = False
    reason: str | None = None

    @property
    def resolved_config(self) -> dict[str, Any] | None:
        """The config after expressions; per-item expressions show as their source text."""
        value = self.resolved
        if value is None or value is self.config:
            return value  # type: ignore[no-any-return,unused-ignore]
        shown: dict[str, Any] = _plain(value)
        self.resolved = shown
        return shown

    @resolved_config.setter
    def resolved_config(self, value: dict[str, Any] | None) -> None:
        self.resolved = value

    @property
    def data(self) -> dict[str, Any]:
        """Everything about the node as one JSON-ready dict."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "port": self.port,
            "input": self.input,
            "output": self.output,
            "attempts": self.attempts,
            "logs": self.logs,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "started_at": self.started_at,
            "config": self.config,
            "resolved_config": self.resolved_config,
            "pinned": self.pinned,
            "reused": self.reused,
            "stale": self.stale,
            "reason": self.reason,
        }

    def _repr_html_(self) -> str:
        from ._html import node_run_html

        return node_run_html(self)

    def __repr__(self) -> str:
        extra = f" port={self.port}" if self.port not in (None, "default") else ""
        took = f" {self.duration_ms:g} ms" if self.duration_ms is not None else ""
        return f"<NodeRun {self.id} {self.status}{extra}{took}>"


_UNSETTLED = frozenset({"queued", "running", "paused"})


class Run:
    """A notebook run of a workflow: started at once, awaitable, indexable by node id.

        >>> run = await wf.run(params={"name": "Ada"})
        >>> run.status, run["greet"].output
        >>> run.pin("fetch")                  # reuse this output in the next runs
        >>> again = await wf.run(start_from="transform")   # re-run from a node

    Displaying a run shows its graph (animated while it runs) and a summary.
    """

    def __init__(
        self,
        wf: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        pins: Mapping[str, Mapping[str, Any]] | None = None,
        use_pins: bool = True,
        start_from: str | None = None,
        previous: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        debugger: Any = None,
        runtime: Any = None,
    ) -> None:
        from ..engine.executor import Execution
        from .session import session_of

        self.workflow = wf
        self.session = session_of(wf)
        pin_map = self.session.all_pins() if use_pins else {}
        pin_map.update({k: dict(v) for k, v in (pins or {}).items()})
        if start_from is not None and previous is None:
            last = self.session.last
            if last is None:
                raise Conv3nError(
                    f"cannot re-run {wf.name!r} from {start_from!r}: no earlier run in this "
                    "notebook to reuse upstream results from; run the workflow once first"
                )
            previous = last.previous_results()
        self.nodes: dict[str, NodeRun] = {
            nid: NodeRun(nid, node.type, config=node.config, pinned=nid in pin_map)
            for nid, node in wf.nodes.items()
        }
        self.start_from = start_from
        self.debugger = debugger
        self.paused_at: str | None = None
        self.status = "pending"
        self.duration_ms: float | None = None
        self.result: dict[str, Any] | None = None
        self.events = 0
        self._hooks = _Recorder(self) if debugger is None else _Hooks(self, debugger)
        self.execution = Execution(
            wf,
            params,
            trigger=trigger,
            listeners=[self._on_event],
            pins=pin_map,
            start_from=start_from,
            previous=previous,
            debugger=self._hooks,
            timeout=timeout,
            runtime=runtime,
        )
        self.task: asyncio.Task[Run] | None = None
        self._rerun: set[str] | None = (
            wf.downstream(start_from) | {start_from} if start_from is not None else None
        )

    # -- running ------------------------------------------------------------------------
    def start(self) -> Run:
        """Start on the running event loop (done by ``Workflow.run`` when a loop runs)."""
        if self.task is None:
            self.session.last = self
            self.task = asyncio.ensure_future(self._main())
            self.session.refresh()
        return self

    async def _main(self) -> Run:
        try:
            result = await self.execution.run()
        except asyncio.CancelledError:
            self._finish(self.execution.result())
            raise
        self._finish(result)
        return self

    def _finish(self, result: dict[str, Any]) -> None:
        self.result = result
        self.status = result["status"]
        self.duration_ms = result.get("duration_ms")
        self.paused_at = None
        self._sync_all()
        session = self.session
        if self._rerun is None:
            session.stale.clear()
        else:
            session.stale -= self._rerun
        for view in list(session.views):
            if view.run is self or (session.last is self and view.run is None):
                view.flush()

    def __await__(self) -> Generator[Any, None, Run]:
        if self.task is None:
            self.start()
        assert self.task is not None
        return self.task.__await__()

    def cancel(self) -> None:
        """Stop the run: no new node starts, running ones are cancelled."""
        self.execution.cancel("cancelled")

    @property
    def done(self) -> bool:
        return self.result is not None

    # -- events -------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.events += 1
        nid = event.node_id
        t = event.type
        if t == "execution_started":
            self.status = "running"
            self._sync_reused()
        elif nid is not None and event.data.get("depth") is None:
            nr = self.nodes.get(nid)
            if nr is not None:
                if t == "node_started":
                    nr.status = "running"
                    nr.attempts = max(nr.attempts, 1)
                elif t == "node_finished":
                    self._sync(nid)
                elif t == "node_skipped":
                    nr.status = "skipped"
                    nr.reason = event.data.get("reason")
                elif t == "node_retrying":
                    nr.attempts = int(event.data.get("attempt", nr.attempts)) + 1
                elif t == "log":
                    nr.logs.append(
                        {
                            "ts": event.ts,
                            "level": event.data.get("level"),
                            "message": event.data.get("message"),
                        }
                    )
        # Only the views showing this run: a view bound to an earlier run has nothing to redraw.
        latest = self.session.last is self
        for view in self.session.views:
            if view.run is self or (latest and view.run is None):
                view.schedule()

    def _sync(self, nid: str) -> None:
        r = self.execution.results.get(nid)
        nr = self.nodes[nid]
        if r is None:
            return
        nr.status = r["status"]
        nr.port = r.get("port")
        nr.output = r.get("data")
        nr.attempts = r.get("attempts", nr.attempts)
        if "logs" in r:
            nr.logs = list(r["logs"])
        nr.error = r.get("error")
        nr.duration_ms = r.get("duration_ms")
        nr.started_at = r.get("started_at")
        nr.pinned = bool(r.get("pinned"))
        nr.reused = bool(r.get("reused"))
        nr.reason = r.get("reason")

    def _sync_reused(self) -> None:
        # Reused results of a partial run are seeded without events; pick them up once.
        asyncio.get_running_loop().call_soon(self._sync_seeded)

    def _sync_seeded(self) -> None:
        for nid, r in list(self.execution.results.items()):
            if r.get("reused") and self.nodes[nid].status == "queued":
                self._sync(nid)

    def _sync_all(self) -> None:
        # Finished nodes were synced by their event; what is left was settled without one
        # (skipped because the run stopped or never reached them).
        nodes = self.nodes
        for nid in self.execution.results:
            nr = nodes.get(nid)
            if nr is not None and nr.status in _UNSETTLED:
                self._sync(nid)

    def previous_results(self) -> dict[str, Any]:
        """This run's results in the engine's shape, for a partial re-run to reuse."""
        return {"nodes": dict(self.execution.results)}

    # -- reading ------------------------------------------------------------------------
    def __getitem__(self, node_id: str) -> NodeRun:
        try:
            return self.nodes[node_id]
        except KeyError:
            known = ", ".join(self.nodes)
            raise KeyError(
                f"no node {node_id!r} in {self.workflow.name!r} (nodes: {known})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def output(self) -> Any:
        return None if self.result is None else self.result.get("output")

    @property
    def error(self) -> dict[str, Any] | None:
        return None if self.result is None else self.result.get("error")

    def pin(self, node_id: str) -> None:
        """Pin this run's output of ``node_id``: later runs reuse it instead of running the node."""
        nr = self[node_id]
        if nr.status != "success":
            raise Conv3nError(
                f"cannot pin {node_id!r}: it did not succeed in this run ({nr.status})"
            )
        self.session.pin(node_id, nr.output, port=nr.port or "default")

    def table(self) -> list[dict[str, Any]]:
        """One row per node: status, port, duration, attempts (for a quick look or a DataFrame)."""
        return [
            {
                "node": nr.id,
                "type": nr.type,
                "status": nr.status,
                "port": nr.port,
                "duration_ms": nr.duration_ms,
                "attempts": nr.attempts,
                "note": "pinned" if nr.pinned else "reused" if nr.reused else nr.reason or "",
            }
            for nr in self.nodes.values()
        ]

    def __repr__(self) -> str:
        done = sum(
            1 for n in self.nodes.values() if n.status not in ("queued", "running", "paused")
        )
        return f"<Run {self.workflow.name!r} {self.status} {done}/{len(self.nodes)} nodes>"

    def _repr_html_(self) -> str:
        return _table_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .graph import GraphView

        bundle: dict[str, Any] = GraphView(self.workflow, run=self)._repr_mimebundle_(
            include=include, exclude=exclude
        )
        bundle["text/plain"] = repr(self)
        return bundle


class _Recorder:
    """The engine's debugger hook of a plain run: record each node's input and resolved config.
    It never pauses, so the engine keeps its fast synchronous start for pure data blocks."""

    pauses = False

    def __init__(self, run: Run) -> None:
        self.nodes = run.nodes

    async def before_node(self, execution: Any, node: Any, ctx: Any) -> None:
        nr = self.nodes.get(node.id)
        if nr is not None:
            nr.input = ctx.input
            nr.resolved = ctx.config


class _Hooks(_Recorder):
    """Record, then hand over to a pausing debugger (which may edit input and config)."""

    pauses = True

    def __init__(self, run: Run, debugger: Any) -> None:
        super().__init__(run)
        self.debugger = debugger

    async def before_node(self, execution: Any, node: Any, ctx: Any) -> None:
        await super().before_node(execution, node, ctx)  # shown while paused
        await self.debugger.before_node(execution, node, ctx)
        await super().before_node(execution, node, ctx)  # as edited at the pause

    async def after_node(self, execution: Any, node: Any, ctx: Any, result: dict[str, Any]) -> None:
        await self.debugger.after_node(execution, node, ctx, result)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    source = getattr(value, "source", None)
    return source if isinstance(source, str) else repr(value)


def start_run(wf: Workflow, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Run:
    """``Workflow.run``: make a :class:`Run`, started now if an event loop is running."""
    run = Run(wf, params, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run  # started by the first ``await``
    return run.start()


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table_html(run: Run) -> str:
    """A static summary table (what a notebook shows where widgets cannot render)."""
    head = (
        f"<p><b>{_esc(run.workflow.name)}</b>: {_esc(run.status)}"
        + (f" in {run.duration_ms:,.1f} ms" if run.duration_ms is not None else "")
        + "</p>"
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_esc(f'{v:,.1f}' if isinstance(v, float) else v)}</td>" for v in row.values()
        )
        + "</tr>"
        for row in run.table()
    )
    cols = "".join(
        f"<th>{c}</th>" for c in ("node", "type", "status", "port", "ms", "attempts", "note")
    )
    return f"{head}<table><thead><tr>{cols}</tr></thead><tbody>{rows}</tbody></table>"
