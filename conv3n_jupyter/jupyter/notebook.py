"""Notebook ↔ workflow: a notebook's code cells become ``custom/code`` nodes, and back.

:func:`from_notebook` links the cells by their real data dependencies (found by ipyflow in a
separate process, see :mod:`conv3n_jupyter.jupyter._flow_worker`) and generates for each cell a
``main(input, ctx)`` that takes the names it reads from the upstream nodes' data, runs the cell
and returns the names later cells read (see :mod:`conv3n_jupyter.jupyter._codegen`).
:func:`to_notebook` writes a workflow as a notebook, one cell per node.

    >>> wf = from_notebook("analysis.ipynb", tag="conv3n")
    >>> print(describe_dependencies(wf))
    cell_1 → cell_3 (df, threshold)
    >>> wf.to_notebook("analysis-roundtrip.ipynb")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Conv3nError, Problem, WorkflowValidationError
from ..model import ID_RE, Workflow, parse
from ._codegen import node_code as node_code

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["describe_dependencies", "from_notebook", "to_notebook"]

TAG = "conv3n"
_ID_COMMENT = re.compile(r"^#\s*conv3n:\s*(\S+)\s*$")
_STDERR_LINES = 20


@dataclass
class _Cell:
    id: str
    number: int  # 1-based among the notebook's code cells
    where: str  # JSON path of the cell in the notebook
    source: str


def from_notebook(
    path: str | Path | NotebookNode | dict[str, Any],
    *,
    tag: str | None = None,
    name: str | None = None,
    mode: str = "static",
    timeout: float = 60,
) -> Workflow:
    """Build a workflow from a notebook: one ``custom/code`` node per code cell.

        >>> wf = from_notebook("analysis.ipynb")               # every code cell
        >>> wf = from_notebook("analysis.ipynb", tag="conv3n")  # cells tagged conv3n only
        >>> print(describe_dependencies(wf))
        cell_1 → cell_3 (df, threshold)

    Edges follow the names each cell reads from earlier cells, found by ipyflow-core:
    ``mode="static"`` executes nothing (ipyflow's liveness analysis plus a reaching-definitions
    pass: a read comes from the last earlier cell binding the name; a cell changing a value in
    place, as in ``data.append(x)``, ``d["k"] = v`` or ``obj.attr = v``, counts as binding it;
    the globals a function reads count as reads of the cells that use it, at that point, and
    the globals it rebinds (``global x``) as bindings of those cells).
    ``mode="traced"`` EXECUTES the notebook's code, cell by cell, in ipyflow's tracing shell
    (in a separate process, working folder = the notebook's) and uses the traced parents. Both
    run in a subprocess stopped after ``timeout`` seconds. Neither sees
    ``globals()[...] = ...`` nor names bound by ``from m import *``.

    Node ids: a cell tag ``conv3n:<id>``, else ``metadata.conv3n.node`` (what
    :func:`to_notebook` writes), else a first line ``# conv3n: <id>``, else ``cell_<n>``
    (``n`` counts the notebook's code cells from 1, skipped ones included). Empty cells and
    markdown are skipped; with ``tag``, only cells tagged ``tag`` or ``tag:<id>`` are kept
    (names bound only in the other cells are then missing).

    A node's data holds the names later cells read (they must be JSON), its other names (as
    JSON, else as their ``repr``) and, under ``_``, the value the cell displays last (its final
    expression, unless ``None`` or silenced by ``;``). Functions, classes, lambdas and imports
    that a later cell uses are copied into that cell's node, not sent as data. ``%time`` and
    ``%timeit`` run their statement once; ``!cmd``, ``x = !cmd`` and ``%%bash`` run through
    the shell; ``%matplotlib``-like display magics are dropped; other magics are refused.
    Each node keeps the cell's source under ``x-source`` (and a fingerprint of the code made
    from it under ``x-generated``), each edge the names it carries under ``x-names``.
    """
    if mode not in ("static", "traced"):
        raise ValueError(f"mode must be 'static' or 'traced', not {mode!r}")
    notebook, label, folder = _read(path)
    cells = _select(notebook, tag, label)
    request = {"mode": mode, "cells": [{"id": c.id, "source": c.source} for c in cells]}
    answer = _run_worker(request, label=label, cwd=folder, timeout=timeout)
    by_id = {c.id: c for c in cells}
    if not answer.get("ok"):
        problems = [
            Problem(by_id[p["cell"]].where, f"{p['cell']}: {p['reason']}", node=p["cell"])
            for p in answer["problems"]
        ]
        raise WorkflowValidationError(problems, source=label)
    plans = {plan["id"]: plan for plan in answer["cells"]}
    nodes = {}
    for cell in cells:
        code = node_code(plans[cell.id], plans)
        nodes[cell.id] = {
            "type": "custom/code",
            "config": {"code": code},
            "x-source": cell.source,
            "x-cell": cell.number,
            "x-generated": _fingerprint(code),
        }
    edges = [{"source": s, "target": t, "x-names": names} for s, t, names in answer["edges"]]
    title = _title_metadata(notebook)
    data: dict[str, Any] = {
        "conv3n": "1",
        "name": name or title.get("workflow") or (Path(label).stem if folder else "notebook"),
        "description": title.get("description")
        or (f"Built from the notebook {Path(label).name}" if folder else "Built from a notebook"),
        "nodes": nodes,
        "edges": edges,
    }
    return parse(data, source=label)


def describe_dependencies(wf: Workflow) -> str:
    """The edges with the names they carry, one per line: ``cell_1 → cell_3 (df, threshold)``.

    Nodes without any edge are listed as ``cell_6 (no dependencies)``.
    """
    lines = []
    linked: set[str] = set()
    for edge in wf.all_edges:
        names = edge.extra.get("x-names") or []
        carried = f" ({', '.join(str(n) for n in names)})" if names else ""
        lines.append(f"{edge.source} → {edge.target}{carried}")
        linked |= {edge.source, edge.target}
    lines += [f"{n} (no dependencies)" for n in wf.nodes if n not in linked]
    return "\n".join(lines)


# -- reading ------------------------------------------------------------------------------------


def _read(
    path: str | Path | NotebookNode | dict[str, Any],
) -> tuple[dict[str, Any], str, Path | None]:
    """The notebook as a dict, the label errors use, and its folder (None when given as data)."""
    if isinstance(path, dict):
        return path, "<notebook>", None
    p = Path(path)
    label = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowValidationError([Problem("", f"file not found: {p}")], source=label) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowValidationError(
            [Problem("", f"cannot read {p}: {exc}")], source=label
        ) from None
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = (
            f"not a notebook: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        )
        raise WorkflowValidationError([Problem("", reason)], source=label) from None
    return notebook, label, p.resolve().parent


def _select(notebook: dict[str, Any], tag: str | None, label: str) -> list[_Cell]:
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        reason = "not a notebook in nbformat 4: no 'cells' list"
        raise WorkflowValidationError([Problem("", reason)], source=label)
    selected: list[_Cell] = []
    problems = []
    number = 0
    for index, cell in enumerate(cells):
        where = f"cells[{index}]"
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            problems.append(Problem(where, "not a notebook cell (no 'cell_type')"))
            continue
        if cell["cell_type"] != "code":
            continue
        number += 1
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if not isinstance(source, str):
            problems.append(Problem(where, "'source' must be text or a list of lines"))
            continue
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        tags = metadata.get("tags")
        tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        if tag is not None and not any(t == tag or t.startswith(f"{tag}:") for t in tags):
            continue
        if not source.strip():
            continue
        node_id = _cell_id(tags, metadata, source) or f"cell_{number}"
        if not ID_RE.match(node_id):
            problems.append(Problem(where, f"node id {node_id!r} is not a valid id"))
        elif any(c.id == node_id for c in selected):
            problems.append(Problem(where, f"node id {node_id!r} is used by an earlier cell"))
        selected.append(_Cell(node_id, number, where, source))
    if problems:
        raise WorkflowValidationError(problems, source=label)
    if not selected:
        which = f"tagged {tag!r}" if tag is not None else "with code"
        raise WorkflowValidationError([Problem("", f"no cells {which}")], source=label)
    return selected


def _cell_id(tags: list[str], metadata: dict[str, Any], source: str) -> str | None:
    for t in tags:
        if t.startswith(f"{TAG}:"):
            return t[len(TAG) + 1 :]
    ours = metadata.get(TAG)
    if isinstance(ours, dict) and isinstance(ours.get("node"), str):
        return str(ours["node"])
    match = _ID_COMMENT.match(source.lstrip().split("\n", 1)[0])
    return match.group(1) if match else None


def _title_metadata(notebook: dict[str, Any]) -> dict[str, Any]:
    for cell in notebook.get("cells", []):
        ours = cell.get("metadata", {}).get(TAG) if isinstance(cell, dict) else None
        if isinstance(ours, dict) and "workflow" in ours:
            return ours
    return {}


# -- the analysis process -----------------------------------------------------------------------


def _run_worker(
    request: dict[str, Any], *, label: str, cwd: Path | None, timeout: float
) -> dict[str, Any]:
    """Ask ``_flow_worker`` in a fresh interpreter (ipyflow refuses to start inside IPython)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("MPLBACKEND", "Agg")  # traced cells that plot must not open windows
    mode = request["mode"]
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="conv3n-flow-") as scratch:
        # The scratch folder holds the request and serves as IPython's profile folder, so the
        # user's own profile is neither read nor written.
        env["IPYTHONDIR"] = scratch
        request_file = Path(scratch, "request.json")
        request_file.write_text(json.dumps(request), encoding="utf-8")
        with request_file.open("rb") as stdin:
            # A session of its own: on timeout the whole group goes, ! commands included.
            process = subprocess.Popen(
                [sys.executable, "-m", "conv3n_jupyter.jupyter._flow_worker"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        try:
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            _kill(process)
            _, stderr = process.communicate()
            raise Conv3nError(
                f"{label}: finding the cells' dependencies ({mode}) took longer than "
                f"{timeout:g}s and was stopped{_tail(stderr)}"
            ) from None
        except BaseException:
            _kill(process)
            process.communicate()
            raise
    if process.returncode != 0:
        raise Conv3nError(
            f"{label}: finding the cells' dependencies ({mode}) failed with exit code "
            f"{process.returncode}{_tail(stderr)}"
        )
    try:
        answer: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        raise Conv3nError(
            f"{label}: the dependency analysis ({mode}) gave no answer{_tail(stderr)}"
        ) from None
    return answer


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill the worker's process group (it may have ended on its own meanwhile)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(stderr: str | None) -> str:
    lines = (stderr or "").strip().splitlines()[-_STDERR_LINES:]
    return ":\n" + "\n".join(lines) if lines else ""


# -- workflow → notebook ------------------------------------------------------------------------


def to_notebook(wf: Workflow, path: str | Path | None = None) -> NotebookNode:
    """The workflow as a notebook; written to ``path`` (atomically, replacing it) if given.

        >>> nb = wf.to_notebook("pipeline.ipynb")

    A title cell, then one cell per node in dependency order: a ``custom/code`` node made by
    :func:`from_notebook` gives back its cell's source (unless its code was edited since);
    another ``custom/code`` node gives its code followed by a call of ``main`` (``ctx`` is
    ``None`` outside a run); other nodes
    become a markdown cell with their type and config. Every cell is tagged ``conv3n`` and
    carries ``metadata.conv3n.node``, so :func:`from_notebook` gives the same ids back.
    """
    import nbformat

    v4: Any = nbformat.v4  # nbformat has no type hints

    title = f"# {wf.name}" + (f"\n\n{wf.description}" if wf.description else "")
    ours: dict[str, Any] = {"workflow": wf.name}
    if wf.description:
        ours["description"] = wf.description
    cells = [v4.new_markdown_cell(title, metadata={"tags": [TAG], TAG: ours})]
    parents: dict[str, list[str]] = {n: [] for n in wf.nodes}
    for edge in wf.all_edges:
        if edge.target in parents and edge.source not in parents[edge.target]:
            parents[edge.target].append(edge.source)
    for node_id in _topological(wf.nodes, parents):
        node = wf.nodes[node_id]
        metadata = {"tags": [TAG], TAG: {"node": node_id}}
        code = node.config.get("code")
        if node.type == "custom/code" and isinstance(code, str):
            source = node.extra.get("x-source")
            if not isinstance(source, str) or node.extra.get("x-generated") != _fingerprint(code):
                source = _called_code(node_id, code, parents[node_id], wf)
            cells.append(v4.new_code_cell(source, metadata=metadata))
        else:
            cells.append(v4.new_markdown_cell(_describe_node(node_id, node), metadata=metadata))
    notebook: NotebookNode = v4.new_notebook(cells=cells)
    if path is not None:
        writes: Any = nbformat.writes
        _write_atomically(Path(path), writes(notebook))
    return notebook


def _fingerprint(code: str) -> str:
    """Tells whether a node's code is still the one made from its cell (not edited since)."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def _topological(nodes: dict[str, Any], parents: dict[str, list[str]]) -> list[str]:
    """Nodes after their parents; ties (and cycles, which validation refuses) in file order."""
    order: list[str] = []
    placed: set[str] = set()
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if all(p in placed for p in parents[n])] or pending[:1]
        order.append(ready[0])
        placed.add(ready[0])
        pending.remove(ready[0])
    return order


def _called_code(node_id: str, code: str, parents: list[str], wf: Workflow) -> str:
    """A code node not made from a cell: its code, then ``main`` called on its parents' data."""
    variable = _variable(node_id)
    callers = [p for p in parents if wf.nodes[p].type == "custom/code"]
    if not parents:
        argument = "None"
    elif len(parents) == 1:
        argument = _variable(parents[0]) if callers else "None"
    else:
        argument = "{" + ", ".join(f"{json.dumps(p)}: {_variable(p)}" for p in callers) + "}"
    return (
        f"# conv3n: {node_id}\n{code.rstrip()}\n\n"
        f"# ctx only exists in a workflow run\n{variable} = main({argument}, None)\n{variable}"
    )


def _variable(node_id: str) -> str:
    name = re.sub(r"\W", "_", node_id)
    return name if name.isidentifier() else f"node_{name}"


def _describe_node(node_id: str, node: Any) -> str:
    """A markdown cell for a node that is not code: id, type and config as JSON."""
    config = json.dumps(node.config, indent=2, ensure_ascii=False, sort_keys=True)
    fence = "```"
    while fence in config:
        fence += "`"  # a fence longer than any backtick run in the config
    return f"**{node_id}** — `{node.type}`\n\n{fence}json\n{config}\n{fence}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink()
        raise
