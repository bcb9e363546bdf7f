"""The graph's cytoscape stylesheet: a fixed base plus per-state rules built in one pass.

All per-run state (status colours, labels with timings, pins, breakpoints, stale marks) lives
in the stylesheet, never in the elements: one ``cytoscape_style`` change updates every node at
once, where changing each node's ``classes`` would cost one comm message per node.
"""

from __future__ import annotations

import re
from base64 import b64encode
from typing import Any

COLORS = {
    "queued": "#9e9e9e",
    "running": "#1e88e5",
    "paused": "#fb8c00",
    "success": "#43a047",
    "error": "#e53935",
    "skipped": "#bdbdbd",
    "cancelled": "#6d4c41",
}
IDLE_FILL = "#eceff1"
BREAK_COLOR = "#d50000"

# A glyph per block family (ASCII only: headless browsers may lack symbol fonts).
_GLYPHS = {
    "http_request": ("GET", "#5e35b1"),
    "transform": ("fx", "#00897b"),
    "condition": ("if", "#f4511e"),
    "loop": ("for", "#3949ab"),
    "delay": ("zz", "#757575"),
    "file": ("file", "#6d4c41"),
    "set_var": ("var", "#8e24aa"),
    "get_var": ("var", "#8e24aa"),
    "code": ("{ }", "#263238"),
    "noop": ("-", "#9e9e9e"),
    "database": ("db", "#0277bd"),
    "subworkflow": ("sub", "#2e7d32"),
}
_ICON_CACHE: dict[str, str] = {}


def icon_for(block_type: str) -> str:
    """A data-URI SVG badge for the block type (cached)."""
    short = block_type.rsplit("/", 1)[-1]
    uri = _ICON_CACHE.get(short)
    if uri is None:
        glyph, color = _GLYPHS.get(short, (short[:3], "#546e7a"))
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
            f'<rect width="40" height="40" rx="8" fill="{color}"/>'
            '<text x="20" y="25" font-family="sans-serif" font-size="13" font-weight="bold" '
            f'fill="white" text-anchor="middle">{_xml(glyph)}</text></svg>'
        )
        uri = _ICON_CACHE[short] = "data:image/svg+xml;base64," + b64encode(svg.encode()).decode()
    return uri


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def base_style() -> list[dict[str, Any]]:
    return [
        {
            "selector": "node",
            "style": {
                "shape": "round-rectangle",
                "width": 168,
                "height": 54,
                "background-color": IDLE_FILL,
                "border-width": 2,
                "border-color": "#90a4ae",
                "label": "data(label)",
                "text-valign": "center",
                "text-halign": "center",
                "text-wrap": "wrap",
                "text-max-width": 120,
                "font-size": 11,
                "font-family": "sans-serif",
                "color": "#212121",
                "background-image": "data(icon)",
                "background-width": 22,
                "background-height": 22,
                "background-position-x": 8,
                "background-position-y": 16,
                "background-clip": "none",
                "text-margin-x": 12,
            },
        },
        {
            "selector": "edge",
            "style": {
                "curve-style": "bezier",
                "target-arrow-shape": "triangle",
                "width": 2,
                "line-color": "#b0bec5",
                "target-arrow-color": "#b0bec5",
                "label": "data(label)",
                "font-size": 10,
                "color": "#455a64",
                "text-background-color": "#ffffff",
                "text-background-opacity": 1,
                "text-background-padding": 2,
            },
        },
        {"selector": "edge.standby", "style": {"line-style": "dashed"}},
        {
            "selector": "node:selected",
            "style": {"overlay-color": "#1e88e5", "overlay-opacity": 0.15},
        },
    ]


_NEEDS_ESCAPE = re.compile(r"([^A-Za-z0-9_])")


_SELECTORS: dict[str, str] = {}


def selector(ids: list[str]) -> str:
    """A cytoscape selector for these element ids (ids are escaped for the selector grammar)."""
    cache = _SELECTORS
    out = []
    for i in ids:
        sel = cache.get(i)
        if sel is None:
            if len(cache) > 100_000:
                cache.clear()
            sel = cache[i] = "#" + _NEEDS_ESCAPE.sub(r"\\\1", i)
        out.append(sel)
    return ", ".join(out)


def state_rules(
    *,
    status: dict[str, str],
    labels: dict[str, str],
    pinned: set[str],
    stale: set[str],
    breakpoints: dict[str, str],
    paused: str | None,
    fired_edges: list[str],
) -> list[dict[str, Any]]:
    """The per-state rules; grouped by state so their count does not grow with the node count."""
    rules: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = {}
    for nid, st in status.items():
        groups.setdefault(st, []).append(nid)
    for st, ids in groups.items():
        color = COLORS.get(st)
        if color is None:
            continue
        fill = color if st not in ("queued", "skipped") else IDLE_FILL
        text = (
            "#ffffff" if st in ("running", "paused", "success", "error", "cancelled") else "#424242"
        )
        rules.append(
            {
                "selector": selector(ids),
                "style": {"background-color": fill, "border-color": color, "color": text},
            }
        )
    if fired_edges:
        rules.append(
            {
                "selector": selector(fired_edges),
                "style": {"line-color": "#43a047", "target-arrow-color": "#43a047", "width": 3},
            }
        )
    if stale:
        rules.append(
            {
                "selector": selector(sorted(stale)),
                "style": {"opacity": 0.5, "border-style": "dashed"},
            }
        )
    if pinned:
        rules.append(
            {
                "selector": selector(sorted(pinned)),
                "style": {"border-style": "double", "border-width": 6},
            }
        )
    for phase in ("before", "after"):
        ids = sorted(n for n, p in breakpoints.items() if p == phase)
        if ids:
            rules.append(
                {
                    "selector": selector(ids),
                    "style": {
                        "border-color": BREAK_COLOR,
                        "border-width": 5,
                        "border-style": "solid" if phase == "before" else "dotted",
                    },
                }
            )
    if paused is not None:
        rules.append(
            {
                "selector": selector([paused]),
                "style": {
                    "background-color": COLORS["paused"],
                    "color": "#ffffff",
                    "border-width": 6,
                },
            }
        )
    sel = _SELECTORS
    for nid, label in labels.items():
        rules.append({"selector": sel.get(nid) or selector([nid]), "style": {"label": label}})
    return rules
