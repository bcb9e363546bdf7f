"""Live per-node progress of a ``conv3n run`` on a terminal (rich), fed by engine events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .engine.events import Event
    from .model import Workflow

STYLES = {
    "pending": "dim",
    "running": "bold yellow",
    "retrying": "yellow",
    "success": "green",
    "error": "bold red",
    "skipped": "dim",
    "cancelled": "magenta",
}
SYMBOLS = {
    "pending": "·",
    "running": "▶",
    "retrying": "↻",
    "success": "✔",
    "error": "✖",
    "skipped": "-",
    "cancelled": "■",
}


class _Row:
    __slots__ = ("attempts", "duration_ms", "note", "started", "status", "type")

    def __init__(self, block_type: str) -> None:
        self.type = block_type
        self.status = "pending"
        self.attempts = 0
        self.started: float | None = None
        self.duration_ms: float | None = None
        self.note = ""


class ProgressListener:
    """An engine listener that keeps a live table of the nodes on ``console`` (stderr).

    Use as a context manager around the run; the final table stays on screen.

        with ProgressListener(workflow, Console(stderr=True)) as progress:
            result = await Execution(workflow, listeners=[progress]).run()
    """

    def __init__(self, workflow: Workflow, console: Console) -> None:
        self.console = console
        self.workflow = workflow
        self.rows = {nid: _Row(node.type) for nid, node in workflow.nodes.items()}
        self.started = time.perf_counter()
        self.finished = False
        self.live = Live(
            get_renderable=self._render,
            console=console,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> ProgressListener:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Draw the final state and stop refreshing (safe to call twice)."""
        if not self.finished:
            self.finished = True
            self.live.refresh()
            self.live.stop()

    def message(self, text: str, style: str = "") -> None:
        """Print a line above the live table."""
        self.console.print(Text(text, style=style))

    # -- events -------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        data = event.data
        if data.get("depth"):
            return  # sub-workflow internals
        row = self.rows.get(event.node_id) if event.node_id is not None else None
        kind = event.type
        if kind == "node_started" and row is not None:
            row.status = "running"
            row.attempts = max(row.attempts, 1)
            row.started = time.perf_counter()
            fallback_for = data.get("fallback_for")
            if fallback_for:
                row.note = f"fallback for {fallback_for}"
        elif kind == "node_retrying" and row is not None:
            row.status = "retrying"
            row.attempts = int(data.get("attempt", row.attempts)) + 1
            row.note = str(data.get("error") or "")
        elif kind == "node_finished" and row is not None:
            row.status = str(data.get("status") or "success")
            row.duration_ms = data.get("duration_ms")
            error = data.get("error")
            if isinstance(error, dict):
                row.note = str(error.get("message") or "")
                row.attempts = int(error.get("attempts") or row.attempts)
            elif row.status == "success":
                port = data.get("port")
                row.note = f"→ {port}" if port not in (None, "default") else ""
                if data.get("fallback"):
                    row.note = f"failed; fallback {data['fallback']} answered"
        elif kind == "node_skipped" and row is not None:
            row.status = "skipped"
            row.note = str(data.get("reason") or "")
        elif kind == "log":
            level = str(data.get("level", "info"))
            style = (
                "red"
                if level in ("error", "critical")
                else "yellow"
                if level == "warning"
                else "dim"
            )
            self.console.print(
                Text.assemble(
                    (f"[{event.node_id}] ", "cyan"), (str(data.get("message", "")), style)
                )
            )

    # -- drawing ------------------------------------------------------------------------
    def _render(self) -> Group:
        now = time.perf_counter()
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("node", style="cyan", no_wrap=True)
        table.add_column("block", style="blue", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("attempts", justify="right")
        table.add_column("time", justify="right", no_wrap=True)
        table.add_column("", overflow="ellipsis", no_wrap=True, max_width=60)
        items = list(self.rows.items())
        limit = max(self.console.height - 4, 5)
        hidden: dict[str, int] = {}
        if len(items) > limit:
            # Keep what moves: running and failed nodes first, then the most recent others.
            order = {"running": 0, "retrying": 0, "error": 1, "cancelled": 2}
            keep = sorted(items, key=lambda kv: order.get(kv[1].status, 3))[: limit - 1]
            kept = {nid for nid, _ in keep}
            for nid, row in items:
                if nid not in kept:
                    hidden[row.status] = hidden.get(row.status, 0) + 1
            items = [kv for kv in items if kv[0] in kept]
        for nid, row in items:
            style = STYLES.get(row.status, "")
            status = Text(f"{SYMBOLS.get(row.status, '?')} {row.status}", style=style)
            if row.duration_ms is not None:
                took = _ms(float(row.duration_ms))
            elif row.started is not None and row.status in ("running", "retrying"):
                took = _ms((now - row.started) * 1000)
            else:
                took = ""
            table.add_row(
                escape(nid),
                escape(row.type),
                status,
                str(row.attempts) if row.attempts else "",
                took,
                Text(row.note, style="dim" if row.status != "error" else "red"),
            )
        parts: list[Any] = [table]
        if hidden:
            more = ", ".join(f"{n} {status}" for status, n in sorted(hidden.items()))
            parts.append(Text(f"… {sum(hidden.values())} more nodes ({more})", style="dim"))
        return Group(*parts)


def _ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)}m{(ms % 60_000) / 1000:02.0f}s"
