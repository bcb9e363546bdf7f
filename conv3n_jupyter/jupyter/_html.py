"""HTML for the inspector: JSON trees, record tables, logs, errors, config diffs, badges.

Pure functions returning strings, shared by the :class:`~conv3n_jupyter.jupyter.inspector.Inspector`
widget and ``NodeRun._repr_html_``. Everything works without JavaScript (``<details>`` for
folding, one ``<style>`` block of ``c3-`` classes), and every piece of workflow data is escaped:
it is untrusted. The JSON tree and records table live in
:mod:`conv3n_jupyter.jupyter._html_tree` and are importable from here too.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from ._html_tree import _compact, _plural
from ._html_tree import json_tree as json_tree
from ._html_tree import records_table as records_table
from ._html_tree import value_view as value_view
from ._style import COLORS

if TYPE_CHECKING:
    from .run import NodeRun

STATUS_COLORS = COLORS  # the graph's palette: a badge and its node share a colour

CSS = (
    "<style>"
    ".c3-tree,.c3-table,.c3-logs,.c3-error,.c3-diff{font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px;line-height:1.45}"
    ".c3-tree details>summary{cursor:pointer}"
    ".c3-kids{margin-left:1.1em;border-left:1px dotted #ccc;padding-left:.4em}"
    ".c3-row{margin-left:1.1em;white-space:pre-wrap;word-break:break-word}"
    ".c3-tree>.c3-row{margin-left:0}"
    ".c3-key{color:#7b1fa2}.c3-idx{color:#9e9e9e}.c3-str{color:#2e7d32}.c3-num{color:#1565c0}"
    ".c3-bool{color:#ef6c00}.c3-null{color:#9e9e9e;font-style:italic}.c3-other{color:#6d4c41}"
    ".c3-count,.c3-more,.c3-trunc,.c3-note,.c3-empty{color:#9e9e9e;font-style:italic}"
    ".c3-tree mark,.c3-table mark{background:#fff176;color:inherit;padding:0}"
    ".c3-table{border-collapse:collapse}.c3-table th,.c3-table td{border:1px solid #e0e0e0;"
    "padding:1px 6px;text-align:left;vertical-align:top;max-width:28em;overflow:hidden}"
    ".c3-table th{background:#f5f5f5}.c3-missing{background:#fafafa}"
    ".c3-badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:11px;"
    "font-weight:600;line-height:18px}"
    ".c3-head{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:center;padding:4px 6px;"
    "border:1px solid #e0e0e0;border-radius:4px}"
    ".c3-head .c3-id{font-weight:700}.c3-head .c3-type{color:#616161}"
    ".c3-stale{border-style:dashed;opacity:.5}.c3-break{color:#d50000;font-weight:600}"
    ".c3-pin{border:3px double #455a64;border-radius:3px;padding:0 5px;font-size:11px}"
    ".c3-log{white-space:pre-wrap;word-break:break-word}.c3-ts{color:#9e9e9e}"
    ".c3-lvl{font-weight:600}.c3-lvl-warning .c3-lvl,.c3-lvl-warn .c3-lvl{color:#fb8c00}"
    ".c3-lvl-error .c3-lvl,.c3-lvl-critical .c3-lvl{color:#e53935}.c3-lvl-debug{color:#757575}"
    ".c3-error .c3-title{color:#e53935;font-weight:700}"
    ".c3-stack{background:#fff5f5;border-left:3px solid #e53935;padding:4px 8px;margin:4px 0;"
    "white-space:pre-wrap}"
    ".c3-src{background:#fafafa;padding:4px 8px;margin:4px 0;white-space:pre}"
    ".c3-src .c3-hot{background:#ffcdd2;display:inline-block;min-width:100%}"
    ".c3-diff td{vertical-align:top}.c3-changed>td{background:#fff8e1}"
    ".c3-changed>td:first-child{border-left:3px solid #fb8c00}"
    ".c3-msg-err{color:#e53935;white-space:pre-wrap}.c3-msg-ok{color:#43a047}"
    ".c3-json textarea{font-family:var(--jp-code-font-family,monospace);font-size:12px}"
    "</style>"
)

_LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "critical"})


def _clock(ts: Any) -> str:
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        try:
            return _dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]
        except (OverflowError, OSError, ValueError):
            return repr(ts)
    return "" if ts is None else str(ts)


def logs_html(logs: Iterable[Any] | None, *, max_lines: int = 1000) -> str:
    """The log lines (time, level, message), the last ``max_lines`` of them."""
    lines = list(logs or ())
    if not lines:
        return '<div class="c3-empty">No logs.</div>'
    out = ['<div class="c3-logs">']
    if len(lines) > max_lines:
        out.append(f'<div class="c3-more">… {len(lines) - max_lines:,} earlier lines</div>')
        lines = lines[-max_lines:]
    for line in lines:
        entry = line if isinstance(line, Mapping) else {"message": line}
        level = str(entry.get("level") or "info").lower()
        message = entry.get("message")
        text = message if isinstance(message, str) else _compact(message, 2000)
        out.append(
            f'<div class="c3-log c3-lvl-{level if level in _LEVELS else "other"}">'
            f'<span class="c3-ts">{escape(_clock(entry.get("ts")))}</span> '
            f'<span class="c3-lvl">{escape(level.upper())}</span> {escape(text)}</div>'
        )
    out.append("</div>")
    return "".join(out)


def _source_excerpt(source: str, line: int, around: int = 3) -> str:
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    first, last = max(1, line - around), min(len(lines), line + around)
    width = len(str(last))
    rows = []
    for n in range(first, last + 1):
        text = escape(f"{n:>{width}} │ {lines[n - 1]}")
        rows.append(f'<span class="c3-hot">{text}</span>' if n == line else text)
    return '<pre class="c3-src">' + "\n".join(rows) + "</pre>"


def error_html(error: Mapping[str, Any] | None, *, source: str | None = None) -> str:
    """A node's error: type, message, the expression or the user's code lines and stack.

    ``source`` is the node's code (``custom/code``): the lines around the failing one are shown.
    Details the view does not know show as a tree.
    """
    if not error:
        return '<div class="c3-empty">No error.</div>'
    details = error.get("details")
    details = dict(details) if isinstance(details, Mapping) else {}
    kind = str(error.get("type") or "Error")
    if details.get("error_type") and details["error_type"] != kind:
        kind += f" · {details['error_type']}"
    out = [
        '<div class="c3-error">',
        f'<div class="c3-title">{escape(kind)}</div>',
        f'<div class="c3-msg-err">{escape(str(error.get("message") or ""))}</div>',
    ]
    facts = []
    for name in ("node", "key", "expression", "attempts"):
        if error.get(name) is not None:
            facts.append(f"{name} <code>{escape(str(error[name]))}</code>")
    line, column = details.pop("line", None), details.pop("column", None)
    if isinstance(line, int):
        facts.append(
            f"line <code>{line}</code>"
            + (f", column <code>{column}</code>" if isinstance(column, int) else "")
        )
    if facts:
        out.append(f'<div class="c3-note">{" · ".join(facts)}</div>')
    if source and isinstance(line, int):
        out.append(_source_excerpt(source, line))
    details.pop("error_type", None)
    for name in ("stack", "stderr"):
        text = details.pop(name, None)
        if text:
            out.append(f'<pre class="c3-stack" title="{name}">{escape(str(text))}</pre>')
    known = {"type", "message", "node", "key", "expression", "attempts", "details"}
    details.update({k: v for k, v in error.items() if k not in known})
    if details:
        out.append(f'<div class="c3-note">details</div>{json_tree(details, open_depth=2)}')
    out.append("</div>")
    return "".join(out)


def config_diff_html(raw: Mapping[str, Any] | None, resolved: Mapping[str, Any] | None) -> str:
    """The raw config next to the resolved one; keys whose value expressions changed are marked."""
    raw = raw or {}
    if resolved is None:
        note = '<div class="c3-note">Not resolved yet: the node has not started.</div>'
        return note + json_tree(dict(raw), open_depth=2)
    keys = list(dict.fromkeys([*raw, *resolved]))
    if not keys:
        return '<div class="c3-empty">No config.</div>'
    out = [
        '<table class="c3-table c3-diff"><thead><tr><th>key</th><th>raw</th><th>resolved</th></tr></thead><tbody>'
    ]
    missing = '<span class="c3-empty">—</span>'
    for k in keys:
        changed = (k in raw) != (k in resolved) or (k in raw and raw[k] != resolved[k])
        cells = [
            json_tree(side[k], open_depth=0) if k in side else missing for side in (raw, resolved)
        ]
        row = '<tr class="c3-changed">' if changed else "<tr>"
        out.append(
            f"{row}"
            f'<td class="c3-key">{escape(str(k))}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def status_badge(status: str | None) -> str:
    """A coloured pill naming the status (colours of the graph's palette)."""
    text = str(status or "unknown")
    color = STATUS_COLORS.get(text, "#757575")
    fg = "#212121" if text == "skipped" else "#fff"
    return f'<span class="c3-badge" style="background:{color};color:{fg}">{escape(text)}</span>'


def _duration(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{minutes:.0f} min {seconds:.0f} s"


def header_html(
    node: NodeRun | None, *, pinned: bool | None = None, breakpoint: str | None = None
) -> str:
    """One line about the node: id, type, status, port, duration, attempts and markers."""
    if node is None:
        return '<div class="c3-head c3-empty">No node selected.</div>'
    pinned = node.pinned if pinned is None else pinned
    parts = [
        f'<span class="c3-id">{escape(node.id)}</span>',
        f'<span class="c3-type">{escape(node.type)}</span>',
        status_badge(node.status),
    ]
    if node.port is not None:
        parts.append(f"<span>port <code>{escape(str(node.port))}</code></span>")
    if node.duration_ms is not None:
        parts.append(f"<span>{escape(_duration(node.duration_ms))}</span>")
    if node.attempts > 1:
        parts.append(f"<span>{_plural(node.attempts, 'attempt')}</span>")
    # Markers drawn like the graph's: pins double-bordered, breakpoints red, stale dashed.
    if pinned:
        parts.append('<span class="c3-pin" title="output pinned">pinned</span>')
    if node.reused:
        parts.append(
            '<span class="c3-note" title="output reused from an earlier run">reused</span>'
        )
    if node.stale:
        parts.append('<span class="c3-note" title="upstream changed since">stale</span>')
    if breakpoint:
        parts.append(f'<span class="c3-break">● break {escape(breakpoint)}</span>')
    if node.reason:
        parts.append(f'<span class="c3-note">{escape(node.reason)}</span>')
    cls = "c3-head c3-stale" if node.stale else "c3-head"
    return f'<div class="{cls}">{"".join(parts)}</div>'


def output_html(node: NodeRun, *, search: str | None = None) -> str:
    """The node's output, or why there is none yet (a ``null`` output of a success is shown)."""
    if node.output is None and node.status != "success":
        why = node.reason or {
            "error": "the node failed (see Error)",
            "skipped": "the node was skipped",
            "cancelled": "the run was cancelled",
        }.get(node.status, "not yet")
        return f'<div class="c3-empty">No output: {escape(why)}.</div>'
    return value_view(node.output, search=search)


def node_run_html(node: NodeRun) -> str:
    """A static view of everything about a node run (``NodeRun._repr_html_``)."""
    code = node.config.get("code") if node.type == "custom/code" else None
    sections = [
        ("Output", output_html(node), node.status != "error"),
        ("Input", value_view(node.input), False),
        ("Config", config_diff_html(node.config, node.resolved_config), False),
        (f"Logs ({len(node.logs):,})", logs_html(node.logs), False),
    ]
    if node.error:
        source = code if isinstance(code, str) else None
        sections.append(("Error", error_html(node.error, source=source), True))
    body = "".join(
        f"<details{' open' if opened else ''}><summary><b>{title}</b></summary>{html}</details>"
        for title, html, opened in sections
    )
    return f'<div class="c3-node-run">{CSS}{header_html(node)}{body}</div>'
