"""The data dependencies between a notebook's code cells, found with ipyflow in its own process.

    python -m conv3n_jupyter.jupyter._flow_worker  < request.json  > answer.json

Request: ``{"mode": "static" | "traced", "cells": [{"id", "source"}, ...]}``, cells in notebook
order. Answer: ``{"ok": true, "cells": [plan, ...], "edges": [[source, target, [names]], ...]}``
or ``{"ok": false, "problems": [{"cell", "reason"}]}``. A plan tells the code generator of
:mod:`conv3n_jupyter.jupyter.notebook` what one cell reads and from where, what it binds, which
definitions of earlier cells it needs inlined, and how to rewrite its few IPython-only lines.

ipyflow's shell is a process-wide singleton that refuses to start inside a running IPython (a
notebook's kernel): that is why this is a separate process. Static mode executes nothing
(:mod:`conv3n_jupyter.jupyter._flow_static`); traced mode runs the cells in ipyflow's tracing
shell and takes its cell parents (:mod:`conv3n_jupyter.jupyter._flow_traced`).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from typing import Any

from conv3n_jupyter.jupyter._flow_static import (
    OWN_SCOPE,
    Cell,
    CellProblem,
    Link,
    analyse,
    link_static,
    magic_method,
    prepare,
)
from conv3n_jupyter.jupyter._flow_traced import link_traced


def plan(cells: list[Cell], links: list[Link]) -> dict[str, Any]:
    """The answer: per cell what the code generator needs, and the edges with their names."""
    needed: list[set[str]] = [set() for _ in cells]
    for link in links:
        for name, source in link.values.items():
            needed[source].add(name)
    out_cells = []
    edges = []
    for pos, (cell, link) in enumerate(zip(cells, links, strict=True)):
        body = cell.tree.body
        code_names = set(cell.code) | {name for _, name in link.inline}  # never sent as data
        last = body[-1] if body else None
        shown = (
            isinstance(last, ast.Expr)
            and last.col_offset == 0
            and magic_method(last.value) is None
            and not _ends_with_semicolon(cell.source, last)
        )
        out_cells.append(
            {
                "id": cell.id,
                "source": cell.source,
                "reads": {n: cells[s].id for n, s in sorted(link.values.items())},
                "inline": _inline(cells, link),
                "bound": sorted(cell.bound | cell.mutates | link.writes),
                "values": sorted((cell.values | cell.mutates | link.writes) - code_names),
                "needed": sorted(needed[pos]),
                "display": last.lineno if shown and last is not None else None,
                "globals": [s.lineno for s in body if isinstance(s, ast.Global)],
                "star_imports": [
                    [s.lineno, s.end_lineno]
                    for s in body
                    if isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names)
                ],
                "is_async": _top_level_await(body),
            }
        )
        for source, names in sorted(link.carried.items()):
            edges.append([cells[source].id, cell.id, sorted(names)])
    return {"ok": True, "cells": out_cells, "edges": edges}


def _inline(cells: list[Cell], link: Link) -> list[list[Any]]:
    """``[cell, first line, last line, names]`` of each definition to inline, in notebook order."""
    statements: dict[tuple[int, int, int], set[str]] = {}
    for source, name in link.inline:
        start, end = cells[source].code[name]
        statements.setdefault((source, start, end), set()).add(name)
    return [
        [cells[s].id, start, end, sorted(names)]
        for (s, start, end), names in sorted(statements.items())
    ]


def _ends_with_semicolon(source: str, stmt: ast.stmt) -> bool:
    """IPython shows a cell's last expression unless the line ends with ``;``."""
    lines = source.splitlines()
    end = stmt.end_lineno or stmt.lineno
    tail = lines[end - 1][stmt.end_col_offset or 0 :] if end <= len(lines) else ""
    return tail.split("#", 1)[0].strip().startswith(";")


def _top_level_await(body: list[ast.stmt]) -> bool:
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, OWN_SCOPE))
    return False


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request (see the module docstring)."""
    from ipyflow.flow import NotebookFlow
    from ipyflow.shell import IPyflowInteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # nothing of the analysis belongs in the history file
    IPyflowInteractiveShell.instance(config=config)
    NotebookFlow.instance()
    problems = []
    cells = []
    for item in request["cells"]:
        try:
            cells.append(analyse(item["id"], prepare(item["source"])))
        except CellProblem as exc:
            problems.append({"cell": exc.cell, "reason": exc.reason})
    if problems:
        return {"ok": False, "problems": problems}
    try:
        links = link_traced(cells) if request.get("mode") == "traced" else link_static(cells)
    except CellProblem as exc:
        return {"ok": False, "problems": [{"cell": exc.cell, "reason": exc.reason}]}
    return plan(cells, links)


def main() -> None:
    request = json.load(sys.stdin)
    # The answer owns the real stdout; anything else written there (ipyflow's notices, the
    # traced cells' prints and ! commands) goes to stderr, which the caller shows on failure.
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    answer = run(request)
    with os.fdopen(answer_fd, "w", encoding="utf-8") as out:
        json.dump(answer, out)


if __name__ == "__main__":
    main()
