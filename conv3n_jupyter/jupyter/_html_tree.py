"""HTML views of JSON values: a collapsible tree and a table of records, with search.

Pure functions returning strings, used by :mod:`conv3n_jupyter.jupyter._html` (which re-exports
them) for node outputs, inputs, configs and error details. Folding uses ``<details>``, so the
views work without JavaScript; every key and value is escaped, since workflow data is untrusted.
Big values stay cheap: containers show at most ``max_items`` children, strings at most
``max_string`` characters and a whole tree at most ``max_nodes`` entries, and a search visits
each container once (what it found is memoised per rendering).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

__all__ = ["json_tree", "records_table", "value_view"]

_MAX_DEPTH = 64


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
