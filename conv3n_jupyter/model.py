"""The workflow model: parsing of both node shapes, validation with every problem at once.

A workflow file (see ``workflow-format.md``) becomes a :class:`Workflow` of :class:`Node` s and
:class:`Edge` s. :func:`load` parses and validates; invalid input raises
:class:`~conv3n_jupyter.errors.WorkflowValidationError` listing every problem with its JSON path.

    >>> wf = load("templates/hello.conv3n.json")
    >>> wf.nodes["greet"].type
    'std/transform'
    >>> wf.to_dict()["name"]
    'hello'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Problem, WorkflowValidationError

if TYPE_CHECKING:
    from .expressions import CompiledValue

FORMAT_VERSION = "1"
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
TOP_KEYS = (
    "conv3n",
    "id",
    "name",
    "description",
    "params",
    "nodes",
    "edges",
    "triggers",
    "groups",
    "config",
)
NODE_KEYS = (
    "type",
    "config",
    "depends_on",
    "retry",
    "timeout",
    "on_error",
    "fallback",
    "breakpoint",
    "disabled",
    "position",
    "notes",
)
EDGE_KEYS = ("id", "source", "target", "sourceHandle", "targetHandle")
RETRY_KEYS = ("max_attempts", "backoff", "initial_delay", "max_delay", "jitter")
CONFIG_KEYS = ("max_concurrent_nodes", "timeout", "pin")
PARAM_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
TRIGGER_TYPES = {
    "manual": (),
    "webhook": ("path", "method", "schema", "respond"),
    "cron": ("expression", "timezone"),
    "file": ("path", "events", "pattern"),
}
ERROR_PORT = "error"


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing node is retried: attempts, backoff shape, delays in seconds, jitter."""

    max_attempts: int = 1
    backoff: str = "exponential"
    initial_delay: float = 0.2
    max_delay: float = 10.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` (``attempt`` counts from 1), without jitter."""
        if self.backoff == "fixed":
            d = self.initial_delay
        elif self.backoff == "linear":
            d = self.initial_delay * attempt
        else:
            d = self.initial_delay * (2 ** (attempt - 1))
        return float(min(d, self.max_delay))


NO_RETRY = RetryPolicy()


@dataclass
class Node:
    """One node of a workflow: a block type, its config and how it runs."""

    id: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    retry: RetryPolicy = NO_RETRY
    timeout: float | None = None
    on_error: str = "stop"
    fallback: str | None = None
    breakpoint: bool | str = False
    disabled: bool = False
    position: dict[str, float] | None = None
    notes: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    compiled: CompiledValue | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The node as the format writes it (keys that were written, or differ from defaults)."""
        raw = self.raw
        out: dict[str, Any] = {"type": self.type}
        if self.config or "config" in raw:
            out["config"] = self.config
        if self.depends_on or "depends_on" in raw:
            out["depends_on"] = list(self.depends_on)
        if "retry" in raw or self.retry is not NO_RETRY:
            out["retry"] = (
                raw.get("retry")
                if self.retry is NO_RETRY
                else _retry_dict(self.retry, raw.get("retry"))
            )
        if "timeout" in raw:
            out["timeout"] = raw["timeout"]
        elif self.timeout is not None:
            out["timeout"] = f"{self.timeout:g}s"
        for key, default in (
            ("on_error", "stop"),
            ("fallback", None),
            ("breakpoint", False),
            ("disabled", False),
        ):
            value = getattr(self, key)
            if value != default or key in raw:
                out[key] = value
        if self.position is not None:
            out["position"] = self.position
        if self.notes is not None:
            out["notes"] = self.notes
        out.update(self.extra)
        return out


def _retry_dict(policy: RetryPolicy, raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    return {
        "max_attempts": policy.max_attempts,
        "backoff": policy.backoff,
        "initial_delay": f"{policy.initial_delay * 1000:g}ms",
        "max_delay": f"{policy.max_delay:g}s",
        "jitter": policy.jitter,
    }


@dataclass
class Edge:
    """A connection from ``source`` to ``target``; ``source_handle`` restricts it to one port."""

    source: str
    target: str
    source_handle: str | None = None
    target_handle: str | None = None
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # x- keys, kept for editors

    def fires_on(self, port: str) -> bool:
        """Whether this edge fires when its source emits ``port``."""
        if self.source_handle is None:
            return port != ERROR_PORT
        return self.source_handle == port

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["source"] = self.source
        out["target"] = self.target
        if self.source_handle is not None:
            out["sourceHandle"] = self.source_handle
        if self.target_handle is not None:
            out["targetHandle"] = self.target_handle
        out.update(self.extra)
        return out


@dataclass
class Group:
    """An error boundary: when a member fails, the rest is skipped and ``on_error`` runs."""

    id: str
    nodes: list[str]
    on_error: str | None = None


@dataclass
class Workflow:
    """A parsed, validated workflow. Build with :func:`load` or :func:`parse`."""

    name: str
    nodes: dict[str, Node]
    edges: list[Edge] = field(default_factory=list)
    id: str | None = None
    description: str | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, Group] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    node_shape: str = "map"
    version: str = FORMAT_VERSION
    source: str | None = None
    raw_groups: dict[str, Any] = field(default_factory=dict, repr=False)
    _plan: Any = field(default=None, repr=False, compare=False)
    # Callbacks told about in-place edits (live graph views); the notebook session (pins,
    # breakpoints, runs) of this workflow. Neither is part of the workflow's value.
    _watchers: list[Any] = field(default_factory=list, repr=False, compare=False)
    _session: Any = field(default=None, repr=False, compare=False)

    # -- graph ---------------------------------------------------------------------------
    @property
    def all_edges(self) -> list[Edge]:
        """Explicit edges plus the ones ``depends_on`` implies."""
        implicit = [Edge(dep, node.id) for node in self.nodes.values() for dep in node.depends_on]
        return self.edges + implicit

    @property
    def standby(self) -> frozenset[str]:
        """Nodes that run only as a fallback or a group's error handler."""
        ids = {n.fallback for n in self.nodes.values() if n.fallback}
        ids.update(g.on_error for g in self.groups.values() if g.on_error)
        return frozenset(i for i in ids if i in self.nodes)

    def upstream(self, node_id: str) -> set[str]:
        """Every node ``node_id`` transitively depends on."""
        parents: dict[str, set[str]] = {}
        for e in self.all_edges:
            parents.setdefault(e.target, set()).add(e.source)
        seen: set[str] = set()
        stack = list(parents.get(node_id, ()))
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(parents.get(n, ()))
        return seen

    def downstream(self, node_id: str) -> set[str]:
        """Every node that transitively depends on ``node_id``."""
        children: dict[str, set[str]] = {}
        for e in self.all_edges:
            children.setdefault(e.source, set()).add(e.target)
        seen: set[str] = set()
        stack = list(children.get(node_id, ()))
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(children.get(n, ()))
        return seen

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The workflow in the format, in the node shape it was written in, ``x-`` keys kept."""
        out: dict[str, Any] = {"conv3n": self.version}
        if self.id is not None:
            out["id"] = self.id
        out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        if self.params:
            out["params"] = self.params
        if self.node_shape == "list":
            out["nodes"] = [{"id": n.id, **n.to_dict()} for n in self.nodes.values()]
        else:
            out["nodes"] = {n.id: n.to_dict() for n in self.nodes.values()}
        if self.edges:
            out["edges"] = [e.to_dict() for e in self.edges]
        if self.triggers:
            out["triggers"] = self.triggers
        if self.groups:
            out["groups"] = self.raw_groups or {
                g.id: {"nodes": g.nodes, **({"on_error": g.on_error} if g.on_error else {})}
                for g in self.groups.values()
            }
        if self.config:
            out["config"] = self.config
        out.update(self.extra)
        return out

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False) + "\n"

    @property
    def max_concurrent_nodes(self) -> int:
        return int(self.config.get("max_concurrent_nodes", 8))

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} {len(self.nodes)} nodes, {len(self.all_edges)} edges>"

    def _changed(self) -> None:
        """Tell the watchers (live views) that the workflow was edited in place."""
        self._plan = None
        for watcher in list(self._watchers):
            watcher(self)

    # -- editing (conv3n_jupyter.editing) ------------------------------------------------
    def add(
        self,
        node_id: str,
        type: str,
        config: dict[str, Any] | None = None,
        *,
        after: str | list[str] | None = None,
        port: str | None = None,
        **keys: Any,
    ) -> Node:
        """Add a node (validated with the whole workflow; on error nothing changes).

        >>> wf.add("shout", "std/transform", {"operation": "set", "fields": {"x": 1}}, after="fetch")
        """
        from .editing import add

        return add(self, node_id, type, config, after=after, port=port, **keys)

    def remove(self, node_id: str) -> None:
        """Remove a node with its edges and every reference the format keeps to it."""
        from .editing import remove

        remove(self, node_id)

    def connect(
        self, source: str, target: str, *, port: str | None = None, target_port: str | None = None
    ) -> None:
        """Add an edge ``source → target`` (from ``port`` if given); a cycle is refused."""
        from .editing import connect

        connect(self, source, target, port=port, target_port=target_port)

    def disconnect(self, source: str, target: str, *, port: str | None = None) -> int:
        """Remove the edges ``source → target`` (only from ``port`` if given); returns how many."""
        from .editing import disconnect

        return disconnect(self, source, target, port=port)

    def configure(self, node_id: str, config: dict[str, Any] | None = None, **keys: Any) -> Node:
        """Replace a node's ``config`` and/or set its other keys (``timeout``, ``retry``...)."""
        from .editing import configure

        return configure(self, node_id, config, **keys)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the workflow back to its file (or ``path``), keeping the file's formatting."""
        from .editing import save

        return save(self, path)

    # -- notebook faces (conv3n_jupyter.jupyter; imported only when used) -------------------
    def pin(self, node_id: str, data: Any = None, *, port: str = "default") -> None:
        """Pin a node's output for the next notebook runs (the node is not run; ``data`` flows on)."""
        from .jupyter.session import session_of

        session_of(self).pin(node_id, data, port=port)

    def unpin(self, node_id: str) -> None:
        """Drop a notebook pin: the next runs execute the node again."""
        from .jupyter.session import session_of

        session_of(self).unpin(node_id)

    def run(self, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Start a run in the running event loop; ``await`` it for the finished :class:`Run`.

            >>> run = await wf.run(params={"repo": "python/cpython"})
            >>> run["fetch"].output

        Displayed graphs of this workflow animate while it runs. Keyword arguments: ``pins``,
        ``use_pins`` (default: the session's pins), ``start_from``, ``trigger``, ``timeout``.
        """
        from .jupyter.run import start_run

        return start_run(self, params, **kwargs)

    def debug(
        self,
        params: dict[str, Any] | None = None,
        *,
        breakpoints: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Start a debug run: graph, inspector and controls; pauses at ``breakpoints``.

        >>> dbg = wf.debug(breakpoints=["transform"])   # display dbg to get the controls
        >>> await dbg.paused()                            # or click Continue/Step
        """
        from .jupyter._require import require

        require("ipywidgets", "ipycytoscape")
        from .jupyter.debugger import Debugger

        return Debugger(self, params, breakpoints=breakpoints, **kwargs)

    def graph(self, **kwargs: Any) -> Any:
        """A live graph widget of this workflow (what displaying the workflow shows)."""
        from .jupyter._require import require

        require("ipywidgets", "ipycytoscape")
        from .jupyter.graph import GraphView

        return GraphView(self, **kwargs)

    def to_notebook(self, path: str | Path | None = None) -> Any:
        """The workflow as a notebook (one cell per ``custom/code`` node); written if ``path``."""
        from .jupyter.notebook import to_notebook

        return to_notebook(self, path)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        try:
            view = self.graph()
        except ImportError:
            return {"text/plain": repr(self)}
        bundle: dict[str, Any] = view._repr_mimebundle_(include=include, exclude=exclude)
        bundle["text/plain"] = repr(self)
        return bundle


# -- loading ------------------------------------------------------------------------------


def read_source(path: str | Path) -> Any:
    """Read a workflow file as JSON; malformed JSON is a validation error with line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowValidationError(
            [Problem("", f"file not found: {p}")], source=str(p)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowValidationError(
            [Problem("", f"cannot read {p}: {exc}")], source=str(p)
        ) from None
    return parse_text(text, source=str(p))


def parse_text(text: str, source: str | None = None) -> Any:
    """Parse workflow text (JSON; YAML when the source ends in .yaml/.yml and PyYAML is installed)."""
    if source and source.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise WorkflowValidationError(
                [Problem("", "YAML workflows need PyYAML: pip install pyyaml")], source=source
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise WorkflowValidationError(
                [Problem("", f"malformed YAML: {exc}")], source=source
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise WorkflowValidationError([Problem("", reason)], source=source) from None
    except RecursionError:
        reason = "JSON nested too deeply to read (hundreds of levels of [ or {)"
        raise WorkflowValidationError([Problem("", reason)], source=source) from None


def load(source: str | Path | dict[str, Any]) -> Workflow:
    """Load and validate a workflow from a path, a JSON string or a dict.

    >>> wf = load({"name": "w", "nodes": {"a": {"type": "std/noop"}}})
    >>> list(wf.nodes)
    ['a']
    """
    if isinstance(source, dict):
        return parse(source)
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return parse(parse_text(source))
    return parse(read_source(source), source=str(source))


def parse(data: Any, source: str | None = None) -> Workflow:
    """Build a :class:`Workflow` from the format's dict; raise with every problem found."""
    from ._validate import validate_and_build

    return validate_and_build(data, source)


def validate(data: Any, source: str | None = None) -> list[Problem]:
    """Every problem of a workflow dict (empty when valid)."""
    try:
        parse(data, source)
    except WorkflowValidationError as exc:
        return exc.problems
    return []
