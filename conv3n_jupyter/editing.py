"""Editing a workflow from Python, and saving it without reformatting its file.

Each edit rebuilds the workflow's dict, changes it and validates the whole workflow again
(block types, configs, ports, cycles, references). A refused edit raises
:class:`~conv3n_jupyter.errors.WorkflowValidationError` and leaves the workflow as it was; an
accepted one updates it in place and tells its watchers (live graph views) once.

    >>> wf = load("templates/hello.conv3n.json")
    >>> wf.add("shout", "std/transform", {"operations": []}, after="greet")
    >>> wf.configure("greet", timeout="5s")
    >>> wf.save()  # only the edited lines of the file change

Saving keeps the file's indentation, key order, one-line objects, escapes and final newline:
the parts of the file whose value did not change are copied byte for byte (see :func:`save`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ._jsonlayout import _same

# Also importable from here: saving's layout-keeping writer, for callers of this module.
from ._jsonlayout import ordered_like as ordered_like
from ._jsonlayout import render_like as render_like
from .errors import Conv3nError, Problem, WorkflowValidationError
from .model import parse

if TYPE_CHECKING:
    from .model import Node, Workflow

__all__ = ["add", "configure", "connect", "disconnect", "remove", "save"]

# Not part of the workflow's value: an edit keeps the views watching it and its notebook state.
_KEPT_FIELDS = frozenset({"_watchers", "_session"})
_STEP_X, _STEP_Y = 260, 160  # the layout grid the templates use


def _fail(wf: Workflow, path: str, reason: str, node: str | None = None) -> NoReturn:
    raise WorkflowValidationError([Problem(path, reason, node)], source=wf.source)


def _require(wf: Workflow, node_id: str) -> None:
    if node_id not in wf.nodes:
        match = difflib.get_close_matches(str(node_id), list(wf.nodes), n=1)
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        _fail(wf, f"nodes.{node_id}", f"no node {node_id!r}{hint}", str(node_id))


def _node_dicts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The node objects inside ``data`` by id, whichever shape (map or list) it uses."""
    nodes = data["nodes"]
    if isinstance(nodes, list):
        return {n["id"]: n for n in nodes}
    return dict(nodes)


def _commit(wf: Workflow, data: dict[str, Any]) -> None:
    """Validate ``data`` as a whole workflow, then make ``wf`` that workflow."""
    new = parse(data, source=wf.source)
    for f in dataclasses.fields(new):
        if f.name not in _KEPT_FIELDS:
            setattr(wf, f.name, getattr(new, f.name))
    wf._changed()


def _link(
    data: dict[str, Any], source: str, target: str, port: str | None, target_port: str | None
) -> bool:
    """Connect ``source → target`` in ``data``; False when that link already exists.

    A workflow wired only with ``depends_on`` stays so unless a port is needed; one with
    explicit edges gets another edge (with an id when its edges have ids).
    """
    node = _node_dicts(data)[target]
    deps = node.get("depends_on")
    deps = [deps] if isinstance(deps, str) else list(deps or [])
    edges: list[dict[str, Any]] = data.get("edges") or []
    plain = port is None and target_port is None
    if plain and source in deps:
        return False
    wanted = (source, target, port, target_port)
    if any(
        (e["source"], e["target"], e.get("sourceHandle"), e.get("targetHandle")) == wanted
        for e in edges
    ):
        return False
    if plain and not edges:
        node["depends_on"] = [*deps, source]
        return True
    edge: dict[str, Any] = {"source": source, "target": target}
    if edges and all("id" in e for e in edges):
        taken = {e["id"] for e in edges}
        base = f"e-{source}-{target}" + (f"-{port}" if port else "")
        edge_id, n = base, 2
        while edge_id in taken:
            edge_id, n = f"{base}-{n}", n + 1
        edge = {"id": edge_id, **edge}
    if port is not None:
        edge["sourceHandle"] = port
    if target_port is not None:
        edge["targetHandle"] = target_port
    data["edges"] = [*edges, edge]
    return True


def _place(wf: Workflow, after: list[str]) -> dict[str, float] | None:
    """A free grid position right of ``after`` (or below everything), when all nodes have one."""
    spots = [n.position for n in wf.nodes.values()]
    if not spots or any(p is None for p in spots):
        return None
    taken = {(p["x"], p["y"]) for p in spots if p is not None}
    parents = [p for a in after if (p := wf.nodes[a].position) is not None]
    if parents:
        x, y = max(p["x"] for p in parents) + _STEP_X, parents[0]["y"]
    else:
        x, y = 0, max(p["y"] for p in spots if p is not None) + _STEP_Y
    while (x, y) in taken:
        y += _STEP_Y
    return {"x": x, "y": y}


# -- edits --------------------------------------------------------------------------------


def add(
    wf: Workflow,
    node_id: str,
    type: str,
    config: dict[str, Any] | None = None,
    *,
    after: str | list[str] | None = None,
    port: str | None = None,
    **keys: Any,
) -> Node:
    """Add node ``node_id`` of block ``type``, connected from ``after`` (from ``port`` if given).

    ``keys`` are other node keys (``timeout``, ``retry``, ``on_error``, ``notes``, ``x-…``).
    When every node has a ``position`` and none is given, the node gets the next free spot
    right of ``after``.

        >>> wf.add("check", "std/condition", {"expression": "$input.ok"}, after="fetch")
    """
    if node_id in wf.nodes:
        _fail(wf, f"nodes.{node_id}", f"a node {node_id!r} already exists", node_id)
    sources = [after] if isinstance(after, str) else list(after or [])
    for s in sources:
        _require(wf, s)
    if port is not None and not sources:
        _fail(
            wf,
            f"nodes.{node_id}",
            "port given without after: say which node it is a port of",
            node_id,
        )
    data = copy.deepcopy(wf.to_dict())
    node: dict[str, Any] = {"type": type}
    if config is not None:
        node["config"] = copy.deepcopy(config)
    node.update({k: copy.deepcopy(v) for k, v in keys.items() if v is not None})
    if "position" not in node and (spot := _place(wf, sources)) is not None:
        node["position"] = spot
    if isinstance(data["nodes"], list):
        data["nodes"].append({"id": node_id, **node})
    else:
        data["nodes"][node_id] = node
    for s in sources:
        _link(data, s, node_id, port, None)
    _commit(wf, data)
    return wf.nodes[node_id]


def remove(wf: Workflow, node_id: str) -> None:
    """Remove a node with its edges, ``depends_on`` entries, group membership and pin.

    A node that is another node's ``fallback`` or a group's ``on_error`` handler is refused:
    removing it would silently change how that failure is handled. Detach it first
    (``wf.configure("charge", fallback=None)``). A group left without members is kept, so its
    handler stays a standby node. The removed node's own fallback node stays, and from then
    on runs like any other node (unless something else still makes it a standby node).
    """
    _require(wf, node_id)
    users = [f"the fallback of {n.id!r}" for n in wf.nodes.values() if n.fallback == node_id]
    users += [
        f"the on_error handler of group {g.id!r}"
        for g in wf.groups.values()
        if g.on_error == node_id
    ]
    if users:
        _fail(
            wf,
            f"nodes.{node_id}",
            f"node {node_id!r} is {' and '.join(users)}; remove that reference first",
            node_id,
        )
    data = copy.deepcopy(wf.to_dict())
    if isinstance(data["nodes"], list):
        data["nodes"] = [n for n in data["nodes"] if n["id"] != node_id]
    else:
        del data["nodes"][node_id]
    for node in _node_dicts(data).values():
        deps = node.get("depends_on")
        if isinstance(deps, list) and node_id in deps:
            rest = [d for d in deps if d != node_id]
            if rest:
                node["depends_on"] = rest
            else:
                del node["depends_on"]
    if "edges" in data:
        data["edges"] = [e for e in data["edges"] if node_id not in (e["source"], e["target"])]
    for group in (data.get("groups") or {}).values():
        if isinstance(group, dict) and isinstance(group.get("nodes"), list):
            group["nodes"] = [m for m in group["nodes"] if m != node_id]
    pins = (data.get("config") or {}).get("pin")
    if isinstance(pins, dict) and node_id in pins:
        del pins[node_id]
        if not pins:
            del data["config"]["pin"]
    _commit(wf, data)


def connect(
    wf: Workflow,
    source: str,
    target: str,
    *,
    port: str | None = None,
    target_port: str | None = None,
) -> None:
    """Connect ``source → target`` (only when ``source`` emits ``port``, if given).

    Connecting twice is a no-op. A cycle, an unknown port or an edge into a standby node is
    refused with the validator's reason.
    """
    _require(wf, source)
    _require(wf, target)
    data = copy.deepcopy(wf.to_dict())
    if _link(data, source, target, port, target_port):
        _commit(wf, data)


def disconnect(wf: Workflow, source: str, target: str, *, port: str | None = None) -> int:
    """Remove the links ``source → target`` (only those from ``port`` if given); how many.

    ``depends_on`` entries count as links without a port. No link is not an error (0).
    """
    data = copy.deepcopy(wf.to_dict())
    count = 0
    edges = data.get("edges") or []
    kept = [
        e
        for e in edges
        if not (
            e["source"] == source
            and e["target"] == target
            and (port is None or e.get("sourceHandle") == port)
        )
    ]
    count += len(edges) - len(kept)
    if kept != edges:
        data["edges"] = kept
    node = _node_dicts(data).get(target)
    if port is None and node is not None and source in (node.get("depends_on") or []):
        rest = [d for d in node["depends_on"] if d != source]
        count += len(node["depends_on"]) - len(rest)
        if rest:
            node["depends_on"] = rest
        else:
            del node["depends_on"]
    if count:
        _commit(wf, data)
    return count


def configure(
    wf: Workflow, node_id: str, config: dict[str, Any] | None = None, **keys: Any
) -> Node:
    """Replace the node's ``config`` (when given) and set its other keys; ``None`` removes a key.

    >>> wf.configure("fetch", {"url": "https://example.org"}, timeout="10s", retry=None)
    """
    _require(wf, node_id)
    if "id" in keys:
        _fail(wf, f"nodes.{node_id}.id", "renaming a node is not supported", node_id)
    if config is None and not keys:
        return wf.nodes[node_id]
    data = copy.deepcopy(wf.to_dict())
    node = _node_dicts(data)[node_id]
    if config is not None:
        node["config"] = copy.deepcopy(config)
    for key, value in keys.items():
        if value is None:
            node.pop(key, None)
        else:
            node[key] = copy.deepcopy(value)
    _commit(wf, data)
    return wf.nodes[node_id]


# -- saving -------------------------------------------------------------------------------


def save(wf: Workflow, path: str | Path | None = None) -> Path:
    """Write the workflow to ``path`` or to the file it was loaded from; returns the path.

    Over an existing file the formatting is kept: indentation (spaces or tabs), key order
    (new keys go last), objects written on one line stay on one line, ``\\u`` escapes, line
    endings and the final newline; unchanged parts are copied byte for byte, so saving an
    unedited workflow changes nothing. ``.yaml``/``.yml`` files are written with PyYAML
    (key order kept; comments are lost when something changed). The write is atomic. A
    workflow built from a dict gets ``path`` as its file.
    """
    if path is None and wf.source is None:
        raise Conv3nError(
            f"{wf.name!r} was not loaded from a file: pass a path, e.g. wf.save('flow.conv3n.json')"
        )
    target = Path(path if path is not None else str(wf.source))
    if target.is_dir():
        raise Conv3nError(f"cannot save workflow {wf.name!r}: {target} is a directory")
    data = wf.to_dict()
    try:
        old: str | None = target.read_bytes().decode("utf-8")  # line endings as they are
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError):
        old = None  # unreadable or not text: written anew with the default layout
    is_yaml = target.suffix.lower() in (".yaml", ".yml")
    yaml = _yaml() if is_yaml else None
    previous = None if old is None else _read_old(old, yaml)
    if isinstance(previous, dict) and "conv3n" not in previous and data.get("conv3n") == "1":
        # The version key is optional: a file that leaves it out goes on leaving it out.
        data = {k: v for k, v in data.items() if k != "conv3n"}
    if old is not None and _same(ordered_like(data, previous), previous):
        text = old  # nothing changed: not even a YAML comment is lost
    elif yaml is None:
        text = render_like(data, old)
    else:
        text = _yaml_text(yaml, data, old, previous)
    if text != old:
        _write_atomic(target, text)
    if wf.source is None:
        wf.source = str(target)
    return target


def _read_old(text: str, yaml: Any) -> Any:
    """The data of the file being replaced, or None when it cannot be read as such."""
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise Conv3nError(
            "saving a YAML workflow needs PyYAML: pip install 'conv3n-jupyter[yaml]'"
        ) from None
    return yaml


def _yaml_text(yaml: Any, data: dict[str, Any], old: str | None, previous: Any) -> str:
    ordered = ordered_like(data, previous)
    indent = 2
    for line in (old or "").splitlines():
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            indent = max(2, min(9, len(line) - len(stripped)))
            break
    text: str = yaml.safe_dump(
        ordered,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        indent=indent,
        width=100,
    )
    return text.replace("\n", "\r\n") if old is not None and "\r\n" in old else text


def _write_atomic(target: Path, text: str) -> None:
    """Write via a temporary file in the same folder and ``os.replace`` (no half-written file)."""
    real = Path(os.path.realpath(target))  # replacing a symlink would cut the link
    try:
        mode: int | None = stat.S_IMODE(real.stat().st_mode)
    except FileNotFoundError:
        mode = None
    tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
