"""Validation of the workflow format: one pass that collects every problem, then builds the model."""

from __future__ import annotations

import difflib
import sys
from typing import Any

from .errors import Problem, WorkflowValidationError
from .model import (
    CONFIG_KEYS,
    EDGE_KEYS,
    ERROR_PORT,
    FORMAT_VERSION,
    ID_RE,
    NO_RETRY,
    NODE_KEYS,
    PARAM_TYPES,
    RETRY_KEYS,
    TOP_KEYS,
    TRIGGER_TYPES,
    Edge,
    Group,
    Node,
    RetryPolicy,
    Workflow,
)

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _type_name(value: Any) -> str:
    for name, types in (
        ("null", (type(None),)),
        ("boolean", (bool,)),
        ("integer", (int,)),
        ("number", (float,)),
        ("string", (str,)),
        ("array", (list,)),
        ("object", (dict,)),
    ):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[name])


def _suggest(word: str, options: Any) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, reason: str, node: str | None = None, key: str | None = None) -> None:
        self.problems.append(Problem(path, reason, node, key))

    def duration(
        self, value: Any, path: str, node: str | None = None, key: str | None = None
    ) -> float | None:
        from ._durations import parse_duration

        try:
            return parse_duration(value)
        except (ValueError, TypeError) as exc:
            self.add(path, f"bad duration: {exc}", node, key)
            return None


def validate_and_build(data: Any, source: str | None) -> Workflow:
    c = _Checker()
    if not isinstance(data, dict):
        raise WorkflowValidationError(
            [Problem("", f"a workflow must be a JSON object, not {_type_name(data)}")], source
        )

    extra = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith("x-")}
    for key in data:
        if key not in TOP_KEYS and key not in extra:
            c.add(
                key,
                f"unknown top-level key {key!r}{_suggest(key, TOP_KEYS)}; custom keys must start with 'x-'",
            )
    version = data.get("conv3n", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        c.add(
            "conv3n",
            f"unknown format version {version!r}; this engine reads version {FORMAT_VERSION!r}",
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        c.add(
            "name",
            "required: a non-empty string"
            if name is None
            else f"must be a non-empty string, not {_type_name(name)}",
        )
        name = str(name or "")
    for key in ("id", "description"):
        if key in data and not isinstance(data[key], str):
            c.add(key, f"must be a string, not {_type_name(data[key])}")

    params = _params(c, data.get("params", {}))
    nodes, shape = _nodes(c, data.get("nodes"))
    edges = _edges(c, data.get("edges", []), nodes)
    triggers = _triggers(c, data.get("triggers", []))
    groups = _groups(c, data.get("groups", {}), nodes)
    config = _config(c, data.get("config", {}), nodes)

    wf = Workflow(
        name=name,
        nodes=nodes,
        edges=edges,
        id=data.get("id") if isinstance(data.get("id"), str) else None,
        description=data.get("description") if isinstance(data.get("description"), str) else None,
        params=params,
        triggers=triggers,
        groups=groups,
        config=config,
        extra=extra,
        node_shape=shape,
        source=source,
        raw_groups=data.get("groups", {}) if isinstance(data.get("groups"), dict) else {},
    )
    _graph(c, wf)
    if c.problems:
        raise WorkflowValidationError(c.problems, source)
    return wf


def _params(c: _Checker, raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        c.add("params", f"must be an object of parameter declarations, not {_type_name(raw)}")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for pname, decl in raw.items():
        path = f"params.{pname}"
        if not ID_RE.match(pname):
            c.add(
                path,
                f"bad parameter name {pname!r}: use letters, digits, '_' and '-', not starting with a digit",
            )
        if not isinstance(decl, dict):
            c.add(path, f'must be an object like {{"type": "string"}}, not {_type_name(decl)}')
            continue
        for key in decl:
            if key not in (
                "type",
                "default",
                "description",
                "enum",
                "title",
            ) and not key.startswith("x-"):
                c.add(
                    f"{path}.{key}",
                    f"unknown key {key!r}; allowed: type, default, description, enum, title",
                )
        ptype = decl.get("type", "string")
        types = ptype if isinstance(ptype, list) else [ptype]
        bad = [t for t in types if t not in PARAM_TYPES]
        if bad:
            c.add(f"{path}.type", f"unknown type {bad[0]!r}; use one of {', '.join(PARAM_TYPES)}")
        elif "default" in decl and not any(_is_type(decl["default"], t) for t in types):
            c.add(f"{path}.default", f"default {decl['default']!r} is not of type {ptype}")
        out[pname] = decl
    return out


def _nodes(c: _Checker, raw: Any) -> tuple[dict[str, Node], str]:
    if raw is None:
        c.add("nodes", "required: an object of nodes by id, or a list of nodes with 'id'")
        return {}, "map"
    items: list[tuple[str, Any, str]] = []
    if isinstance(raw, dict):
        shape = "map"
        items = [(nid, nd, f"nodes.{nid}") for nid, nd in raw.items()]
    elif isinstance(raw, list):
        shape = "list"
        for i, nd in enumerate(raw):
            nid = nd.get("id") if isinstance(nd, dict) else None
            if not isinstance(nid, str):
                c.add(f"nodes[{i}].id", "required: every node in a list needs a string 'id'")
                continue
            items.append((nid, {k: v for k, v in nd.items() if k != "id"}, f"nodes.{nid}"))
    else:
        c.add("nodes", f"must be an object or a list, not {_type_name(raw)}")
        return {}, "map"
    if not items and not c.problems:
        c.add("nodes", "a workflow needs at least one node")

    nodes: dict[str, Node] = {}
    for nid, nd, path in items:
        if nid in nodes:
            c.add(path, f"duplicate node id {nid!r}", nid)
            continue
        if not ID_RE.match(nid):
            c.add(path, f"bad node id {nid!r}: must match {ID_RE.pattern}", nid)
        if not isinstance(nd, dict):
            c.add(path, f"a node must be an object, not {_type_name(nd)}", nid)
            continue
        node = _node(c, nid, nd, path)
        if node is not None:
            nodes[nid] = node
    return nodes, shape


def _node(c: _Checker, nid: str, nd: dict[str, Any], path: str) -> Node | None:
    for key in nd:
        if key not in NODE_KEYS and not key.startswith("x-"):
            c.add(f"{path}.{key}", f"unknown node key {key!r}{_suggest(key, NODE_KEYS)}", nid, key)
    btype = nd.get("type")
    if not isinstance(btype, str):
        c.add(f"{path}.type", "required: the block type, e.g. 'std/http_request'", nid, "type")
        btype = ""
    config = nd.get("config", {})
    if not isinstance(config, dict):
        c.add(f"{path}.config", f"must be an object, not {_type_name(config)}", nid, "config")
        config = {}
    depends_on = nd.get("depends_on", [])
    if isinstance(depends_on, str):
        depends_on = [depends_on]
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        c.add(f"{path}.depends_on", "must be a list of node ids", nid, "depends_on")
        depends_on = []
    timeout = None
    if nd.get("timeout") is not None:
        timeout = c.duration(nd["timeout"], f"{path}.timeout", nid, "timeout")
    on_error = nd.get("on_error", "stop")
    if on_error not in ("stop", "continue"):
        c.add(
            f"{path}.on_error", f"must be 'stop' or 'continue', not {on_error!r}", nid, "on_error"
        )
    fallback = nd.get("fallback")
    if fallback is not None and not isinstance(fallback, str):
        c.add(f"{path}.fallback", "must be a node id", nid, "fallback")
        fallback = None
    bp = nd.get("breakpoint", False)
    if bp not in (True, False, "before", "after"):
        c.add(
            f"{path}.breakpoint",
            f"must be true, false, 'before' or 'after', not {bp!r}",
            nid,
            "breakpoint",
        )
    disabled = nd.get("disabled", False)
    if not isinstance(disabled, bool):
        c.add(f"{path}.disabled", "must be true or false", nid, "disabled")
    position = nd.get("position")
    if position is not None and not (
        isinstance(position, dict)
        and all(isinstance(position.get(k), (int, float)) for k in ("x", "y"))
    ):
        c.add(f"{path}.position", 'must be {"x": number, "y": number}', nid, "position")
        position = None
    notes = nd.get("notes")
    if notes is not None and not isinstance(notes, str):
        c.add(f"{path}.notes", "must be a string", nid, "notes")
    retry = _retry(c, nd.get("retry"), f"{path}.retry", nid)
    return Node(
        id=nid,
        type=btype,
        config=config,
        depends_on=depends_on,
        retry=retry,
        timeout=timeout,
        on_error=on_error if on_error in ("stop", "continue") else "stop",
        fallback=fallback,
        breakpoint=bp if bp in (True, False, "before", "after") else False,
        disabled=bool(disabled),
        position=position,
        notes=notes if isinstance(notes, str) else None,
        extra={k: v for k, v in nd.items() if k.startswith("x-")},
        raw=nd,
    )


def _retry(c: _Checker, raw: Any, path: str, nid: str) -> RetryPolicy:
    if raw is None:
        return NO_RETRY
    if not isinstance(raw, dict):
        c.add(path, 'must be an object like {"max_attempts": 3}', nid, "retry")
        return NO_RETRY
    for key in raw:
        if key not in RETRY_KEYS:
            c.add(
                f"{path}.{key}",
                f"unknown retry key {key!r}; allowed: {', '.join(RETRY_KEYS)}",
                nid,
                "retry",
            )
    kw: dict[str, Any] = {"max_attempts": 3}
    attempts = raw.get("max_attempts", 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
        c.add(
            f"{path}.max_attempts",
            f"must be an integer from 1 to 100, not {attempts!r}",
            nid,
            "retry",
        )
    else:
        kw["max_attempts"] = attempts
    backoff = raw.get("backoff", "exponential")
    if backoff not in ("exponential", "linear", "fixed"):
        c.add(
            f"{path}.backoff",
            f"must be 'exponential', 'linear' or 'fixed', not {backoff!r}",
            nid,
            "retry",
        )
    else:
        kw["backoff"] = backoff
    for key in ("initial_delay", "max_delay"):
        if key in raw:
            d = c.duration(raw[key], f"{path}.{key}", nid, "retry")
            if d is not None:
                kw[key] = d
    jitter = raw.get("jitter", True)
    if not isinstance(jitter, bool):
        c.add(f"{path}.jitter", "must be true or false", nid, "retry")
    else:
        kw["jitter"] = jitter
    return RetryPolicy(**kw)


def _edges(c: _Checker, raw: Any, nodes: dict[str, Node]) -> list[Edge]:
    if not isinstance(raw, list):
        c.add("edges", f"must be a list of edges, not {_type_name(raw)}")
        return []
    edges = []
    for i, e in enumerate(raw):
        path = f"edges[{i}]"
        if not isinstance(e, dict):
            c.add(path, 'an edge must be an object like {"source": "a", "target": "b"}')
            continue
        for key in e:
            if key not in EDGE_KEYS and not key.startswith("x-"):
                c.add(f"{path}.{key}", f"unknown edge key {key!r}; allowed: {', '.join(EDGE_KEYS)}")
        ok = True
        for key in ("source", "target"):
            v = e.get(key)
            if not isinstance(v, str):
                c.add(f"{path}.{key}", "required: a node id")
                ok = False
            elif v not in nodes:
                c.add(f"{path}.{key}", f"edge {key} {v!r} is not a node{_suggest(v, nodes)}")
                ok = False
        for key in ("sourceHandle", "targetHandle", "id"):
            if e.get(key) is not None and not isinstance(e[key], str):
                c.add(f"{path}.{key}", "must be a string")
                ok = False
        if ok:
            edges.append(
                Edge(
                    e["source"],
                    e["target"],
                    e.get("sourceHandle"),
                    e.get("targetHandle"),
                    e.get("id"),
                    extra={k: v for k, v in e.items() if k.startswith("x-")},
                )
            )
    return edges


def _triggers(c: _Checker, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        c.add("triggers", f"must be a list, not {_type_name(raw)}")
        return []
    for i, t in enumerate(raw):
        path = f"triggers[{i}]"
        if not isinstance(t, dict) or t.get("type") not in TRIGGER_TYPES:
            got = t.get("type") if isinstance(t, dict) else t
            c.add(f"{path}.type", f"unknown trigger {got!r}; known: {', '.join(TRIGGER_TYPES)}")
            continue
        allowed = TRIGGER_TYPES[t["type"]]
        for key in t:
            if key not in (*allowed, "type", "id", "enabled") and not key.startswith("x-"):
                c.add(
                    f"{path}.{key}",
                    f"unknown key {key!r} for a {t['type']} trigger; allowed: {', '.join(allowed) or 'none'}",
                )
        if t["type"] == "cron":
            expr = t.get("expression")
            if not isinstance(expr, str) or len(expr.split()) not in (5, 6):
                c.add(f"{path}.expression", f"a cron expression needs 5 or 6 fields, got {expr!r}")
        if t["type"] in ("webhook", "file") and not isinstance(t.get("path"), str):
            c.add(f"{path}.path", f"required for a {t['type']} trigger: a string")
        if t["type"] == "webhook" and t.get("method", "POST") not in (
            "GET",
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
        ):
            c.add(f"{path}.method", f"unsupported method {t.get('method')!r}")
        if t["type"] == "file":
            events = t.get("events", ["created", "modified", "deleted"])
            if not isinstance(events, list) or any(
                ev not in ("created", "modified", "deleted") for ev in events
            ):
                c.add(f"{path}.events", "must be a list of 'created', 'modified', 'deleted'")
    return raw


def _groups(c: _Checker, raw: Any, nodes: dict[str, Node]) -> dict[str, Group]:
    if not isinstance(raw, dict):
        c.add("groups", f"must be an object of groups by name, not {_type_name(raw)}")
        return {}
    groups: dict[str, Group] = {}
    member_of: dict[str, str] = {}
    for gid, g in raw.items():
        path = f"groups.{gid}"
        if not isinstance(g, dict) or not isinstance(g.get("nodes"), list):
            c.add(f"{path}.nodes", "required: a list of node ids")
            continue
        for key in g:
            if key not in ("nodes", "on_error") and not key.startswith("x-"):
                c.add(f"{path}.{key}", f"unknown group key {key!r}; allowed: nodes, on_error")
        members = []
        for i, m in enumerate(g["nodes"]):
            if m not in nodes:
                c.add(f"{path}.nodes[{i}]", f"{m!r} is not a node{_suggest(str(m), nodes)}")
            elif m in member_of:
                c.add(
                    f"{path}.nodes[{i}]",
                    f"node {m!r} is already in group {member_of[m]!r}; groups may not overlap",
                    m,
                )
            else:
                member_of[m] = gid
                members.append(m)
        handler = g.get("on_error")
        if handler is not None and handler not in nodes:
            c.add(f"{path}.on_error", f"{handler!r} is not a node{_suggest(str(handler), nodes)}")
            handler = None
        elif handler is not None and handler in members:
            c.add(
                f"{path}.on_error", f"the handler {handler!r} cannot be a member of its own group"
            )
            handler = None
        groups[gid] = Group(gid, members, handler)
    return groups


def _config(c: _Checker, raw: Any, nodes: dict[str, Node]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        c.add("config", f"must be an object, not {_type_name(raw)}")
        return {}
    for key in raw:
        if key not in CONFIG_KEYS and not key.startswith("x-"):
            c.add(f"config.{key}", f"unknown key {key!r}; allowed: {', '.join(CONFIG_KEYS)}")
    mcn = raw.get("max_concurrent_nodes", 8)
    if not isinstance(mcn, int) or isinstance(mcn, bool) or mcn < 1:
        c.add("config.max_concurrent_nodes", f"must be a positive integer, not {mcn!r}")
    if raw.get("timeout") is not None:
        c.duration(raw["timeout"], "config.timeout", key="timeout")
    pins = raw.get("pin", {})
    if not isinstance(pins, dict):
        c.add("config.pin", 'must be an object of node id -> {"data": …}')
    else:
        for nid, pin in pins.items():
            if nid not in nodes:
                c.add(
                    f"config.pin.{nid}", f"pinned node {nid!r} is not a node{_suggest(nid, nodes)}"
                )
            elif not isinstance(pin, dict) or "data" not in pin:
                c.add(
                    f"config.pin.{nid}",
                    "a pin must be an object with 'data' (and optionally 'port')",
                )
    return raw


def _graph(c: _Checker, wf: Workflow) -> None:
    """Checks that need the whole graph: blocks, ports, standby nodes, cycles, expressions."""
    from .blocks import registry

    nodes = wf.nodes
    standby = wf.standby
    blocks = {}
    for node in nodes.values():
        path = f"nodes.{node.id}"
        for dep in node.depends_on:
            if dep not in nodes:
                c.add(
                    f"{path}.depends_on",
                    f"{dep!r} is not a node{_suggest(dep, nodes)}",
                    node.id,
                    "depends_on",
                )
        if node.fallback is not None:
            if node.fallback not in nodes:
                c.add(
                    f"{path}.fallback",
                    f"{node.fallback!r} is not a node{_suggest(node.fallback, nodes)}",
                    node.id,
                    "fallback",
                )
            elif node.fallback == node.id:
                c.add(f"{path}.fallback", "a node cannot be its own fallback", node.id, "fallback")
        if not node.type:
            continue
        try:
            block = registry.get(node.type)
        except registry.UnknownBlockError as exc:
            c.add(f"{path}.type", str(exc), node.id, "type")
            continue
        except ImportError as exc:
            c.add(f"{path}.type", f"block {node.type!r} cannot be loaded: {exc}", node.id, "type")
            continue
        blocks[node.id] = block
        for p in _schema_problems(block.config_schema, node.config, f"{path}.config", node.id):
            c.problems.append(p)
        c.problems.extend(block.check(node.config, f"{path}.config"))

    # Edges: ports and standby nodes. Explicit edges were already checked for endpoints.
    for i, e in enumerate(wf.edges):
        if e.target in standby:
            c.add(
                f"edges[{i}].target",
                f"{e.target!r} is a fallback/error handler (a standby node); edges into it are not allowed",
                e.target,
            )
        if e.source_handle is not None and e.source in blocks:
            src = nodes[e.source]
            ports = set(blocks[e.source].output_ports(src.config))
            if src.on_error == "continue":
                ports.add(ERROR_PORT)
            if e.source_handle not in ports:
                hint = (
                    " (port 'error' is emitted only when the node has on_error: 'continue')"
                    if e.source_handle == ERROR_PORT
                    else ""
                )
                c.add(
                    f"edges[{i}].sourceHandle",
                    f"node {e.source!r} ({src.type}) has no port {e.source_handle!r}; ports: {', '.join(sorted(ports))}{hint}",
                    e.source,
                )
    for node in nodes.values():
        if node.id in standby and node.depends_on:
            c.add(
                f"nodes.{node.id}.depends_on",
                f"{node.id!r} is a fallback/error handler (a standby node) and cannot depend on others",
                node.id,
                "depends_on",
            )

    cycle = _find_cycle(wf)
    if cycle:
        c.add("edges", f"the graph has a cycle: {' -> '.join([*cycle, cycle[0]])}")
    # On a cyclic graph "upstream" means nothing: expressions are still compiled and checked.
    _expressions(c, wf, blocks, check_refs=not cycle)


# Libraries jsonschema imports at its own import time, only to register "format" checkers. The
# block schemas use "format" as an annotation and no validator here checks formats, but the
# imports cost: with Jupyter's dependencies installed, rfc3987_syntax alone builds a grammar for
# seconds. They are hidden while jsonschema is first imported (and visible again afterwards).
_FORMAT_LIBRARIES = (
    "fqdn",
    "idna",
    "isoduration",
    "jsonpointer",
    "rfc3339_validator",
    "rfc3986_validator",
    "rfc3987",
    "rfc3987_syntax",
    "uri_template",
    "webcolors",
)


def _import_jsonschema() -> Any:
    if "jsonschema" not in sys.modules:
        hidden = [m for m in _FORMAT_LIBRARIES if m not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
        try:
            import jsonschema  # noqa: F401
        finally:
            for name in hidden:
                if sys.modules.get(name, False) is None:
                    del sys.modules[name]
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def _schema_problems(
    schema: dict[str, Any], config: dict[str, Any], path: str, nid: str
) -> list[Problem]:
    Draft202012Validator = _import_jsonschema()

    validator = _validators.get(id(schema))
    if validator is None:
        validator = Draft202012Validator(schema)
        _validators[id(schema)] = validator
    out = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        sub = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        key = str(err.absolute_path[0]) if err.absolute_path else None
        out.append(Problem(f"{path}{sub}", _schema_message(err), nid, key))
    return out


_validators: dict[int, Any] = {}


def _schema_message(err: Any) -> str:
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return f"{err.message}; allowed keys: {', '.join(allowed)}"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "pattern" and err.validator_value == r"\{\{":
        return f"{err.instance!r} is not an expression ({{{{ … }}}})"
    if err.validator in ("anyOf", "oneOf") and err.context:
        # Say what each alternative wanted instead of "not valid under any of the given schemas".
        here = [e for e in err.context if not e.relative_path]
        reasons = list(dict.fromkeys(_schema_message(e) for e in (here or err.context)))
        return " or ".join(reasons)
    return str(err.message)


def _find_cycle(wf: Workflow) -> list[str] | None:
    children: dict[str, list[str]] = {n: [] for n in wf.nodes}
    for e in wf.all_edges:
        if e.source in children and e.target in children:
            children[e.source].append(e.target)
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(children, white)
    for start in children:
        if color[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = grey
                trail.append(node)
            kids = children[node]
            if i < len(kids):
                stack.append((node, i + 1))
                kid = kids[i]
                if color[kid] == grey:
                    return trail[trail.index(kid) :]
                if color[kid] == white:
                    stack.append((kid, 0))
            else:
                color[node] = black
                trail.pop()
    return None


def _expressions(
    c: _Checker, wf: Workflow, blocks: dict[str, Any], check_refs: bool = True
) -> None:
    from .expressions import compile_value

    node_ids = frozenset(wf.nodes)
    parents: dict[str, set[str]] = {}
    for e in wf.all_edges:
        parents.setdefault(e.target, set()).add(e.source)
    ancestors: dict[str, set[str]] = {}

    def up(nid: str) -> set[str]:
        if nid not in ancestors:
            acc: set[str] = set()
            for p in parents.get(nid, ()):
                acc.add(p)
                acc |= up(p)
            ancestors[nid] = acc
        return ancestors[nid]

    # A standby node may read what the nodes it stands in for could read (and those nodes).
    served: dict[str, set[str]] = {}
    for node in wf.nodes.values():
        if node.fallback:
            served.setdefault(node.fallback, set()).add(node.id)
    for g in wf.groups.values():
        if g.on_error:
            served.setdefault(g.on_error, set()).update(g.nodes)

    import sys

    limit = sys.getrecursionlimit()
    if len(wf.nodes) + 100 > limit:
        sys.setrecursionlimit(len(wf.nodes) + 200)
    try:
        for node in wf.nodes.values():
            block = blocks.get(node.id)
            if block is None:
                continue
            compiled = compile_value(
                node.config,
                node_ids=node_ids,
                expression_paths=block.expression_paths,
                deferred_paths=block.deferred_paths,
                opaque_paths=block.opaque_paths,
            )
            node.compiled = compiled
            for key, err in compiled.errors:
                c.add(
                    f"nodes.{node.id}.config.{key}",
                    f"{err.reason} in expression {err.expression!r}",
                    node.id,
                    key.split(".")[0],
                )
            if not check_refs:
                continue
            allowed = set(up(node.id))
            for target in served.get(node.id, ()):
                allowed |= up(target) | {target}
            for ref in sorted(compiled.node_refs - allowed):
                reason = (
                    f"refers to node {ref!r}, which is not upstream of {node.id!r}"
                    if ref in node_ids and ref != node.id
                    else f"refers to itself ($node.{ref})"
                    if ref == node.id
                    else f"refers to unknown node {ref!r}"
                )
                c.add(
                    f"nodes.{node.id}.config",
                    reason + "; add an edge or depends_on",
                    node.id,
                    "config",
                )
    finally:
        sys.setrecursionlimit(limit)
