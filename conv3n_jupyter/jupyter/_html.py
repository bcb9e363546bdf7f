"""HTML for the inspector: JSON trees, record tables, logs, errors, config diffs, badges.

Pure functions returning strings, shared by the :class:`~conv3n_jupyter.jupyter.inspector.Inspector`
widget and ``NodeRun._repr_html_``. Everything works without JavaScript (``<details>`` for
folding, one ``<style>`` block of ``c3-`` classes), and every piece of workflow data is escaped:
it is untrusted. Big values stay cheap because containers show at most ``max_items`` children,
strings at most ``max_string`` characters and a whole tree at most ``max_nodes`` entries.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import NodeRun

STATUS_COLORS = {
    "queued": "#9e9e9e",
    "running": "#1e88e5",
    "paused": "#fb8c00",
    "success": "#43a047",
    "error": "#e53935",
    "skipped": "#bdbdbd",
    "cancelled": "#6d4c41",
}

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

_MAX_DEPTH = 64
_LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "critical"})


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _scalar(value: Any) -> tuple[str, str]:
    """CSS class and display text of a non-container value (strings without their quotes)."""
    if isinstance(value, str):
        return "c3-str", value
    if value is None:
        return "c3-null", "null"
    if isinstance(value, bool):
        return "c3-bool", "true" if value else "false"
    if isinstance(value, int | float):
        return "c3-num", repr(value)
    return "c3-other", repr(value)


class _Tree:
    """One rendering of one value; ``out`` collects the HTML pieces."""

    def __init__(
        self, search: str | None, open_depth: int, max_items: int, max_string: int, budget: int
    ) -> None:
        self.out: list[str] = []
        self.needle = search.lower() if search else None
        self.pattern = re.compile(re.escape(search), re.IGNORECASE) if search else None
        self.open_depth = open_depth
        self.max_items = max_items
        self.max_string = max_string
        self.budget = budget
        # Keyed by id(): valid because the rendered value outlives this object.
        self.memo: dict[int, bool] = {}

    def hit(self, text: str) -> bool:
        return self.needle is not None and self.needle in text.lower()

    def contains(self, value: Any, depth: int = 0) -> bool:
        """Whether a key or scalar anywhere in ``value`` matches the search (memoised)."""
        if isinstance(value, str):
            return self.needle is not None and self.needle in value.lower()
        if not isinstance(value, Mapping | list | tuple):
            return self.hit(_scalar(value)[1])
        if depth >= _MAX_DEPTH:
            return False
        found = self.memo.get(id(value))
        if found is None:
            # Inlined string checks: this loop is the whole cost of a search over a big value.
            needle = self.needle or ""
            found = False
            if isinstance(value, Mapping):
                for k, v in value.items():
                    if needle in (k if isinstance(k, str) else str(k)).lower() or (
                        needle in v.lower() if isinstance(v, str) else self.contains(v, depth + 1)
                    ):
                        found = True
                        break
            else:
                for v in value:
                    if needle in v.lower() if isinstance(v, str) else self.contains(v, depth + 1):
                        found = True
                        break
            self.memo[id(value)] = found
        return found

    def mark(self, text: str) -> str:
        """``text`` escaped, with the search matches wrapped in ``<mark>``."""
        if self.pattern is None:
            return escape(text)
        parts, last = [], 0
        for m in self.pattern.finditer(text):
            parts.append(escape(text[last : m.start()]))
            parts.append(f"<mark>{escape(m.group())}</mark>")
            last = m.end()
        parts.append(escape(text[last:]))
        return "".join(parts)

    def clip(self, text: str) -> str:
        """Marked text cut to ``max_string`` characters, around the first match if it is later."""
        limit = self.max_string
        if len(text) <= limit:
            return self.mark(text)
        start = 0
        if self.pattern is not None:
            m = self.pattern.search(text)
            if m is not None and m.end() > limit:
                start = max(0, m.start() - limit // 2)
        end = min(len(text), start + limit)
        head = f'<span class="c3-trunc">… {start:,} chars … </span>' if start else ""
        tail = f'<span class="c3-trunc"> … {len(text) - end:,} more chars</span>'
        return head + self.mark(text[start:end]) + (tail if end < len(text) else "")

    def scalar(self, value: Any) -> str:
        cls, text = _scalar(value)
        body = self.clip(text)
        if cls == "c3-str":
            body = f"&quot;{body}&quot;"
        return f'<span class="{cls}">{body}</span>'

    def entry(self, label: str, value: Any, depth: int, filtered: bool) -> None:
        self.budget -= 1
        is_map = isinstance(value, Mapping)
        if not is_map and not isinstance(value, list | tuple):
            self.out.append(f'<div class="c3-row">{label}{self.scalar(value)}</div>')
            return
        n = len(value)
        brace = "{…}" if is_map else "[…]"
        count = _plural(n, "key" if is_map else "item")
        if n == 0:
            self.out.append(f'<div class="c3-row">{label}{brace[0]}{brace[2]}</div>')
            return
        head = f'{label}<span class="c3-br">{brace}</span> <span class="c3-count">{count}</span>'
        if depth >= _MAX_DEPTH:
            self.out.append(
                f'<div class="c3-row">{head} <span class="c3-trunc">(nested too deep)</span></div>'
            )
            return
        opened = " open" if filtered or depth < self.open_depth else ""
        self.out.append(
            f'<details class="c3-node"{opened}><summary>{head}</summary><div class="c3-kids">'
        )
        items: Iterable[tuple[Any, Any]] = value.items() if is_map else enumerate(value)
        shown = hidden = 0
        for k, v in items:
            key_hit = is_map and self.hit(str(k))
            if filtered and not key_hit and not self.contains(v, depth + 1):
                continue
            if shown >= self.max_items or self.budget <= 0:
                if not filtered:
                    hidden = n - shown
                    break
                hidden += 1
                continue
            key = (
                f'<span class="c3-key">{self.mark(str(k))}</span>: '
                if is_map
                else f'<span class="c3-idx">{k}</span>: '
            )
            self.entry(key, v, depth + 1, filtered and not key_hit)
            shown += 1
        if hidden:
            more = f"… {hidden:,} more" + (" matching" if filtered else "")
            if self.budget <= 0:
                more += " (the view is full)"
            self.out.append(f'<div class="c3-row c3-more">{more}</div>')
        self.out.append("</div></details>")


def json_tree(
    value: Any,
    *,
    search: str | None = None,
    open_depth: int = 1,
    max_items: int = 200,
    max_string: int = 2000,
    max_nodes: int = 5000,
) -> str:
    """A collapsible JSON tree; with ``search``, only the branches holding a match, opened.

    A search matches keys and scalar values, case-insensitively. Non-JSON values show as their
    ``repr``. ``max_nodes`` bounds the whole tree, so a huge nested value renders quickly.
    """
    tree = _Tree(search or None, open_depth, max_items, max_string, max_nodes)
    return _render(value, tree, search)


def _render(value: Any, tree: _Tree, search: str | None) -> str:
    if search and not tree.contains(value):
        return f'<div class="c3-tree c3-empty">No match for “{escape(search)}”.</div>'
    tree.entry("", value, 0, bool(search))
    return '<div class="c3-tree">' + "".join(tree.out) + "</div>"


def _compact(value: Any, limit: int = 120) -> str:
    """One-line JSON-like text of ``value``, cut near ``limit`` characters (never built in full)."""
    parts: list[str] = []
    size = 0

    def walk(v: Any, depth: int) -> None:
        nonlocal size
        if size > limit:
            return
        if depth > _MAX_DEPTH:
            text = "…"
        elif isinstance(v, Mapping | list | tuple):
            is_map = isinstance(v, Mapping)
            pairs: Iterable[tuple[Any, Any]] = v.items() if isinstance(v, Mapping) else enumerate(v)
            parts.append("{" if is_map else "[")
            for i, (k, item) in enumerate(pairs):
                if size > limit:
                    break
                if i:
                    parts.append(",")
                if is_map:
                    key = json.dumps(str(k)[:limit], ensure_ascii=False) + ":"
                    parts.append(key)
                    size += len(key)
                walk(item, depth + 1)
            parts.append("}" if is_map else "]")
            return
        elif isinstance(v, str):
            text = json.dumps(v[: limit + 1], ensure_ascii=False)
        else:
            text = _scalar(v)[1][: limit + 1]
        parts.append(text)
        size += len(text) + 1

    walk(value, 0)
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit] + "…"


def records_table(rows: Any, *, max_rows: int = 100, search: str | None = None) -> str | None:
    """A table when ``rows`` is a non-empty list of objects, else ``None``.

    Columns are the union of the keys in first-seen order (the first 20); nested values show as
    compact one-line JSON. With ``search``, only rows holding a match are listed.
    """
    return _table(rows, _Tree(search or None, 0, 0, 200, 0), max_rows, search)


def _table(rows: Any, tree: _Tree, max_rows: int, search: str | None) -> str | None:
    if not isinstance(rows, list | tuple) or not rows:
        return None
    if not all(isinstance(r, Mapping) for r in rows):
        return None
    columns: dict[Any, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    if not columns:
        return None
    cols = list(columns)[:20]
    picked = [(i, r) for i, r in enumerate(rows) if not search or tree.contains(r)]
    notes = [f"{_plural(len(rows), 'row')} &times; {_plural(len(columns), 'column')}"]
    if len(columns) > len(cols):
        notes.append(f"first {len(cols)} columns shown")
    if search:
        notes.append(f"{len(picked):,} matching “{escape(search)}”")
    if len(picked) > max_rows:
        notes.append(f"first {max_rows:,} shown")
    out = [f'<div class="c3-note">{" · ".join(notes)}</div>']
    if not picked:
        return out[0]
    out.append('<table class="c3-table"><thead><tr><th>#</th>')
    out.extend(f"<th>{tree.mark(str(c))}</th>" for c in cols)
    out.append("</tr></thead><tbody>")
    for i, r in picked[:max_rows]:
        out.append(f'<tr><td class="c3-idx">{i}</td>')
        for c in cols:
            if c not in r:
                out.append('<td class="c3-missing"></td>')
            elif isinstance(r[c], Mapping | list | tuple):
                out.append(f'<td class="c3-other">{tree.mark(_compact(r[c]))}</td>')
            else:
                out.append(f"<td>{tree.scalar(r[c])}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def value_view(value: Any, *, search: str | None = None) -> str:
    """The table of ``value`` if it is a list of objects (its tree one click away), else the tree."""
    cells = _Tree(search or None, 0, 0, 200, 0)
    table = _table(value, cells, 100, search)
    renderer = _Tree(search or None, 1, 200, 2000, 5000)
    renderer.memo = cells.memo  # the table already searched every row: share what it found
    tree = _render(value, renderer, search)
    if table is None:
        return tree
    return f'{table}<details class="c3-alt"><summary>JSON tree</summary>{tree}</details>'


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
