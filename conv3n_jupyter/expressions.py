"""``{{ }}`` templates and safe expressions over a run's roots (``$input``, ``$node.ID`` …).

Expressions use Common Expression Language semantics. Everything is compiled once (and cached);
a pure path such as ``$node.fetch.data.id`` is evaluated in Python without CEL.

    >>> from conv3n_jupyter.expressions import Scope, compile_expression, compile_template
    >>> compile_template("Hello {{ $params.name }}!").render(Scope(params={"name": "Ada"}))
    'Hello Ada!'
    >>> compile_expression("$item.price * 2").evaluate(Scope(), item={"price": 21})
    42

Only the workflow's own config is compiled: values produced while rendering are never parsed
again, so data containing ``{{`` stays text. Expressions see plain JSON values only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from . import _cel
from ._cel import PREFIX, ROOT_SET
from .errors import ExpressionError

__all__ = [
    "DEFAULT_LIMITS",
    "CompiledValue",
    "Expression",
    "Limits",
    "Scope",
    "Template",
    "compile_expression",
    "compile_template",
    "compile_value",
    "evaluate",
    "has_template",
    "to_json_value",
    "to_text",
]


@dataclass(frozen=True)
class Limits:
    """Limits an expression must pass before it reaches the CEL parser."""

    max_length: int = 4096
    max_depth: int = 32
    max_macro_depth: int = 3


DEFAULT_LIMITS = Limits()


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()
_ATTRS = {root: root for root in _cel.ROOTS} | {"node": "nodes"}
_LOOP_ONLY = {"item", "index"}


class Scope:
    """The roots an expression sees; built once per node run.

    ``nodes`` maps node id to result (``{"status", "port", "data"}``); only the nodes an
    expression references are ever handed to CEL. ``now`` defaults to the current UTC time,
    taken once at first use and shared with child scopes. Treat the values as read-only:
    results may share structure with them.

        scope = Scope(nodes=results, input=data, params={"city": "Berlin"})
        compile_expression("$item.qty > 0").evaluate(scope, item={"qty": 2})
    """

    __slots__ = (
        "_now",
        "env",
        "execution",
        "index",
        "input",
        "item",
        "nodes",
        "params",
        "secrets",
        "trigger",
        "vars",
        "workflow",
    )

    def __init__(
        self,
        *,
        nodes: Mapping[str, Any] | None = None,
        input: Any = None,
        params: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
        vars: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
        env: Mapping[str, Any] | None = None,
        execution: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        item: Any = UNSET,
        index: Any = UNSET,
    ) -> None:
        self.nodes = {} if nodes is None else nodes
        self.input = input
        self.params = {} if params is None else params
        self.trigger = {} if trigger is None else trigger
        self.vars = {} if vars is None else vars
        self.secrets = {} if secrets is None else secrets
        self.env = {} if env is None else env
        self.execution = {} if execution is None else execution
        self.workflow = {} if workflow is None else workflow
        self.item = item
        self.index = index
        self._now: list[datetime | None] = [now]

    @property
    def now(self) -> datetime:
        """``$now``: fixed at first use, so every expression of a run sees the same instant."""
        cell = self._now
        value = cell[0]
        if value is None:
            value = cell[0] = datetime.now(timezone.utc)
        return value

    def child(self, **overrides: Any) -> Scope:
        """A copy with some roots replaced, e.g. ``scope.child(item=x, index=i)``."""
        new = Scope.__new__(Scope)
        for name in Scope.__slots__:
            setattr(new, name, getattr(self, name))
        for name, value in overrides.items():
            if name == "now":
                new._now = [value]
                continue
            attr = "nodes" if name == "nodes" else _ATTRS.get(name)
            if attr is None:
                raise TypeError(f"unknown root {name!r} (known: {', '.join(_cel.ROOTS)})")
            setattr(new, attr, value)
        return new

    def __repr__(self) -> str:
        shown = [f"{len(self.nodes)} nodes"]
        shown += [f"{r}=…" for r in ("item", "index") if getattr(self, r) is not UNSET]
        return f"<Scope {' '.join(shown)}>"


# -- paths ---------------------------------------------------------------------------------------


class _PathError(Exception):
    def __init__(self, reason: str, key: Any = None) -> None:
        self.reason = reason
        self.key = key


def _root_value(scope: Scope, root: str, extra: Mapping[str, Any]) -> Any:
    if extra and root in extra:
        return extra[root]
    value = getattr(scope, _ATTRS[root])
    if value is UNSET:
        raise _PathError(_unset_reason(root), root)
    return value


def _unset_reason(root: str) -> str:
    if root in _LOOP_ONLY:
        return f"${root} is only available inside std/loop expressions and loop bodies"
    return f"${root} is not available here"


def _walk(cur: Any, steps: tuple[Any, ...], root: str) -> Any:
    for i, step in enumerate(steps):
        kind = type(cur)
        if kind is dict:
            try:
                cur = cur[step]
                continue
            except KeyError:
                raise _missing(cur, steps, i, root) from None
        if kind is list and type(step) is int:
            if 0 <= step < len(cur):
                cur = cur[step]
                continue
            raise _PathError(
                f"index {step} out of range for {_path_text(root, steps[:i])} "
                f"(a list of {len(cur)})",
                step,
            )
        cur = _slow_step(cur, steps, i, root)
    return cur


def _slow_step(cur: Any, steps: tuple[Any, ...], i: int, root: str) -> Any:
    step = steps[i]
    if isinstance(cur, Mapping):
        try:
            return cur[step]
        except KeyError:
            raise _missing(cur, steps, i, root) from None
    where = _path_text(root, steps[:i])
    if isinstance(cur, (list, tuple)):
        if type(step) is int:
            if 0 <= step < len(cur):
                return cur[step]
            raise _PathError(f"index {step} out of range for {where} (a list of {len(cur)})", step)
        raise _PathError(f"{where} is a list, not an object: it has no field {step!r}", step)
    what = "null" if cur is None else _type_name(cur)
    access = f"item [{step}]" if type(step) is int else f"field {step!r}"
    raise _PathError(f"{where} is {what}, not an object or list: it has no {access}", step)


def _missing(cur: Mapping[Any, Any], steps: tuple[Any, ...], i: int, root: str) -> _PathError:
    step = steps[i]
    if root == "node" and i == 0:
        return _PathError(
            f"node {step!r} has no result: it has not run (is it upstream of this node?)", step
        )
    keys = [str(k) for k in list(cur)[:12]]
    more = f", … ({len(cur) - 12} more)" if len(cur) > 12 else ""
    available = f"available: {', '.join(keys)}{more}" if keys else "it is empty"
    where = _path_text(root, steps[:i])
    return _PathError(f"no field {step!r} in {where} ({available})", step)


def _path_text(root: str, steps: Iterable[Any]) -> str:
    out = ["$" + root]
    for step in steps:
        if type(step) is int:
            out.append(f"[{step}]")
        elif _cel.is_identifier(step):
            out.append("." + step)
        else:
            out.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(out)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


_Trie = dict[Any, Any]  # key -> sub-trie, or None for "the whole value"


def _project(value: Any, trie: _Trie) -> Any:
    """The parts of ``value`` an expression can reach: converting less makes CEL faster."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return value
    out = {}
    for key, sub in trie.items():
        if key in value:
            out[key] = value[key] if sub is None else _project(value[key], sub)
    return out


# -- expressions ---------------------------------------------------------------------------------

_expressions: dict[tuple[Any, ...], Expression] = {}
_templates: dict[tuple[Any, ...], Template] = {}
_CACHE_MAX = 20_000
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


class Expression:
    """A compiled bare expression (no braces), e.g. ``$item.price > 10``.

    ``simple`` is True for a pure path (a root followed by ``.field``, ``["key"]`` and ``[0]``
    steps), which is evaluated in Python and returns the scope's value itself, uncopied.
    """

    __slots__ = (
        "_flat",
        "_flat_vars",
        "_full",
        "_full_vars",
        "_key",
        "_root",
        "_steps",
        "node_refs",
        "roots",
        "simple",
        "source",
    )

    source: str
    node_refs: frozenset[str]
    roots: frozenset[str]
    simple: bool

    def __init__(self, src: str, node_ids: frozenset[str] | None, limits: Limits) -> None:
        self.source = src
        self._key = (src, node_ids, limits)
        tr = _cel.translate_checked(
            src, node_ids, limits.max_length, limits.max_depth, limits.max_macro_depth
        )
        try:
            self._full = _cel.program(tr.text)
        except ValueError as exc:
            raise ExpressionError(_cel.syntax_error(str(exc), tr), expression=src) from exc
        self.node_refs = tr.node_refs
        self.roots = tr.roots
        occs = tr.occurrences
        self._root = ""
        self._steps: tuple[Any, ...] | None = None
        alone = len(occs) == 1 and not tr.text[: occs[0].start].strip()
        if alone and not tr.text[occs[0].ends[-1] :].strip():
            self._root = occs[0].root
            self._steps = tuple(occs[0].steps)
        self.simple = self._steps is not None
        self._full_vars = self._projections(occs)
        self._flat, self._flat_vars = self._flatten(tr, dict(self._full_vars))

    @staticmethod
    def _projections(occs: list[_cel.Occurrence]) -> tuple[tuple[str, _Trie | None], ...]:
        tries: dict[str, _Trie | None] = {}
        for occ in occs:
            prefix: list[Any] = []
            for step in occ.steps:
                if type(step) is not str:
                    break
                prefix.append(step)
            if occ.root in tries and tries[occ.root] is None:
                continue
            if not prefix:
                tries[occ.root] = None
                continue
            trie = tries.setdefault(occ.root, {})
            assert trie is not None
            node: _Trie = trie
            for step in prefix[:-1]:
                sub = node.get(step, {})
                if sub is None:  # a shorter path already takes the whole value
                    break
                node[step] = sub
                node = sub
            else:
                node[prefix[-1]] = None
        return tuple(tries.items())

    @staticmethod
    def _flatten(
        tr: _cel.Translation, tries: dict[str, _Trie | None]
    ) -> tuple[Any, tuple[tuple[str, str, tuple[Any, ...], _Trie | None], ...]]:
        # Each static path becomes one variable: CEL converts a scalar far faster than a map.
        pieces: list[str] = []
        names: dict[tuple[str, tuple[Any, ...]], str] = {}
        last = 0
        for occ in tr.occurrences:
            keep = len(occ.steps) - (1 if occ.in_has else 0)
            steps = tuple(occ.steps[:keep])
            if not steps:
                names[(occ.root, ())] = PREFIX + occ.root
                continue
            name = names.setdefault((occ.root, steps), f"{PREFIX}v{len(names)}")
            pieces += [tr.text[last : occ.start], name]
            last = occ.ends[keep]
        pieces.append(tr.text[last:])
        try:
            flat = _cel.program("".join(pieces))
        except ValueError:
            return None, ()
        flat_vars = tuple(
            (name, root, steps, tries.get(root) if not steps else None)
            for (root, steps), name in names.items()
        )
        return flat, flat_vars

    def evaluate(self, scope: Scope, **extra: Any) -> Any:
        """The expression's value in ``scope``; ``extra`` adds or overrides roots (``item=``)."""
        if extra and not ROOT_SET.issuperset(extra):
            raise TypeError(f"unknown roots {sorted(set(extra) - ROOT_SET)}")
        steps = self._steps
        if steps is not None:
            try:
                return _walk(_root_value(scope, self._root, extra), steps, self._root)
            except _PathError as exc:
                raise ExpressionError(exc.reason, expression=self.source) from None
        return to_json_value(self._run(scope, extra))

    def _run(self, scope: Scope, extra: Mapping[str, Any]) -> Any:
        failure: _PathError | None = None
        if self._flat is not None:
            values = {}
            try:
                for name, root, steps, trie in self._flat_vars:
                    value = _root_value(scope, root, extra)
                    if steps:
                        value = _walk(value, steps, root)
                    elif trie is not None:
                        value = _project(value, trie)
                    values[name] = value
            except _PathError as exc:
                failure = exc  # CEL decides: the failing path may sit in an unevaluated branch
            else:
                return self._execute(self._flat, values, scope, failure)
        values = {}
        for root, trie in self._full_vars:
            try:
                value = _root_value(scope, root, extra)
            except _PathError:
                continue
            values[PREFIX + root] = value if trie is None else _project(value, trie)
        return self._execute(self._full, values, scope, failure)

    def _execute(
        self, program: Any, values: dict[str, Any], scope: Scope, failure: _PathError | None
    ) -> Any:
        try:
            return program.execute(values)
        except Exception as exc:  # mapped at the boundary with the native engine
            reason = self._reason(exc, scope, failure)
            raise ExpressionError(reason, expression=self.source) from exc

    def _reason(self, exc: Exception, scope: Scope, failure: _PathError | None) -> str:
        text = _cel.public_names(str(exc))
        if isinstance(exc, KeyError):
            key = exc.args[0] if exc.args else None
            if failure is not None and str(failure.key) == str(key):
                return failure.reason
            if key in self.node_refs and key not in scope.nodes:
                return f"node {key!r} has no result: it has not run (is it upstream of this node?)"
            return f"no field {key!r}" if key is not None else "no such key"
        if isinstance(exc, IndexError):
            if failure is not None and type(failure.key) is int:
                return failure.reason
            return text
        if isinstance(exc, ZeroDivisionError):
            return "division by zero"
        if isinstance(exc, RuntimeError):
            m = _UNDEFINED.search(str(exc))
            if m is not None:
                name = m.group(1)
                if name.startswith(PREFIX) and name[len(PREFIX) :] in ROOT_SET:
                    return _unset_reason(name[len(PREFIX) :])
                return f"unknown variable or function {name!r}"
        if isinstance(exc, ValueError) and "Conversion" in text:
            return f"a value given to the expression is not plain JSON data ({text})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_expression, self._key)

    def __repr__(self) -> str:
        how = "path" if getattr(self, "simple", False) else "cel"
        return f"<Expression {self.source!r} {how}>"


def _restore_expression(src: str, node_ids: frozenset[str] | None, limits: Limits) -> Expression:
    return compile_expression(src, node_ids=node_ids, limits=limits)


def _ids(node_ids: Iterable[str] | None) -> frozenset[str] | None:
    if node_ids is None or isinstance(node_ids, frozenset):
        return node_ids
    return frozenset(node_ids)


def compile_expression(
    src: str, *, node_ids: Iterable[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Expression:
    """Compile a bare expression (no braces); cached, so compiling it again is cheap.

    ``node_ids``, when given, are the workflow's node ids: ``$node.ID`` must name one of them,
    and ``$node.my-id`` (an id with dashes) is then understood. Raises :class:`ExpressionError`.

        expr = compile_expression("$node.fetch.data.total > 10", node_ids={"fetch"})
        expr.node_refs  # frozenset({'fetch'})
    """
    ids = _ids(node_ids)
    key = (src, ids, limits)
    expr = _expressions.get(key)
    if expr is None:
        if not isinstance(src, str):
            raise ExpressionError(f"an expression must be a string, not {type(src).__name__}")
        expr = Expression(src, ids, limits)
        if len(_expressions) >= _CACHE_MAX:
            _expressions.clear()
        _expressions[key] = expr
    return expr


# -- templates -----------------------------------------------------------------------------------


def has_template(text: str) -> bool:
    """Whether ``text`` holds a ``{{ }}`` template."""
    return "{{" in text


def _split(text: str) -> list[str | tuple[str, int]]:
    """Literal text and ``(expression, offset)`` pieces; braces inside the expression nest."""
    parts: list[str | tuple[str, int]] = []
    pos = 0
    match = _cel._TOKEN.match
    while True:
        start = text.find("{{", pos)
        if start < 0:
            if pos < len(text):
                parts.append(text[pos:])
            return parts
        if start > pos:
            parts.append(text[pos:start])
        i, depth = start + 2, 0
        while True:
            if i >= len(text):
                raise ExpressionError(
                    f"'{{{{' at column {start + 1} has no closing '}}}}'", expression=text
                )
            if depth == 0 and text.startswith("}}", i):
                break
            m = match(text, i)
            assert m is not None
            tok = m.group()
            if m.lastgroup == "other":
                if tok in "\"'":
                    raise ExpressionError(
                        f"unterminated string literal at column {i + 1}", expression=text
                    )
                if tok == "{":
                    depth += 1
                elif tok == "}" and depth:
                    depth -= 1
            i = m.end()
        inner = text[start + 2 : i]
        parts.append((inner.strip(), start + 2 + len(inner) - len(inner.lstrip())))
        pos = i + 2


class Template:
    """A config string holding ``{{ EXPR }}`` parts.

    When the whole string is one ``{{ EXPR }}`` (``whole``), rendering returns the value with
    its type; otherwise each value is turned into text (see :func:`to_text`) and spliced in.
    """

    __slots__ = ("_key", "_parts", "expressions", "node_refs", "roots", "source", "whole")

    def __init__(self, text: str, node_ids: frozenset[str] | None, limits: Limits) -> None:
        self.source = text
        self._key = (text, node_ids, limits)
        parts: list[str | Expression] = []
        for part in _split(text):
            if isinstance(part, str):
                parts.append(part)
            else:
                parts.append(compile_expression(part[0], node_ids=node_ids, limits=limits))
        self._parts = tuple(parts)
        self.expressions = tuple(p for p in parts if isinstance(p, Expression))
        self.whole = len(parts) == 1 and isinstance(parts[0], Expression)
        self.node_refs = frozenset().union(*(e.node_refs for e in self.expressions))
        self.roots = frozenset().union(*(e.roots for e in self.expressions))

    def render(self, scope: Scope, **extra: Any) -> Any:
        """The value (``whole``) or the text with every ``{{ }}`` replaced."""
        if self.whole:
            return self.expressions[0].evaluate(scope, **extra)
        return "".join(
            p if type(p) is str else to_text(p.evaluate(scope, **extra))  # type: ignore[union-attr]
            for p in self._parts
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_template, self._key)

    def __repr__(self) -> str:
        return f"<Template {self.source!r} {'whole' if self.whole else 'text'}>"


def _restore_template(text: str, node_ids: frozenset[str] | None, limits: Limits) -> Template:
    return Template(text, node_ids, limits)


def compile_template(
    text: str, *, node_ids: Iterable[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Template | str:
    """Compile a config string; one without ``{{`` is returned unchanged (the same object).

    t = compile_template("{{ $input.count }}")   # whole: render() returns the number
    compile_template("plain") == "plain"
    """
    if "{{" not in text:
        return text
    ids = _ids(node_ids)
    key = (text, ids, limits)
    tpl = _templates.get(key)
    if tpl is None:
        tpl = Template(text, ids, limits)
        if len(_templates) >= _CACHE_MAX:
            _templates.clear()
        _templates[key] = tpl
    return tpl


# -- values --------------------------------------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, type(None)})


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _duration(value: timedelta) -> str:
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}.{frac:06d}".rstrip("0") + "s" if frac else f"{sign}{seconds}s"


def to_json_value(value: Any) -> Any:
    """Turn an expression result into plain JSON.

    Timestamps become ISO 8601 text (``Z`` for UTC), durations CEL's duration text
    (``"1.5s"``, which ``duration()`` reads back), bytes base64 text, map keys strings.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [to_json_value(v) for v in value]
    if kind is dict or isinstance(value, Mapping):
        return {k if type(k) is str else to_text(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return str(value)


def _json_default(value: Any) -> Any:
    converted = to_json_value(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return converted


def to_text(value: Any) -> str:
    """The text a value splices into a template: JSON for objects and lists, ``true``,
    ``false`` and ``null`` for booleans and null, ISO 8601 for timestamps."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is int or kind is float:
        return str(value)
    if isinstance(value, (dict, list, tuple, Mapping)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    converted = to_json_value(value)
    return converted if isinstance(converted, str) else to_text(converted)


def evaluate(compiled: Any, scope: Scope, **extra: Any) -> Any:
    """Evaluate an :class:`Expression`, render a :class:`Template` or resolve a
    :class:`CompiledValue`; any other value is returned unchanged."""
    if isinstance(compiled, Expression):
        return compiled.evaluate(scope, **extra)
    if isinstance(compiled, Template):
        return compiled.render(scope, **extra)
    if isinstance(compiled, CompiledValue):
        return compiled.resolve(scope, **extra)
    return compiled


_Plan = tuple[Any, ...]  # ("t", template, path) | ("d"|"l", container, [(key, plan)])


class CompiledValue:
    """A node's config with every template compiled; :meth:`resolve` renders it per run.

    ``errors`` lists every compile problem as ``(dotted path, ExpressionError)``.
    """

    __slots__ = ("_plan", "_value", "constant", "errors", "node_refs", "roots")

    def __init__(
        self,
        value: Any,
        plan: _Plan | None,
        node_refs: frozenset[str],
        roots: frozenset[str],
        errors: list[tuple[str, ExpressionError]],
    ) -> None:
        self._value = value
        self._plan = plan
        self.constant = plan is None
        self.node_refs = node_refs
        self.roots = roots
        self.errors = errors

    def resolve(self, scope: Scope, **extra: Any) -> Any:
        """The value with templates rendered (the compiled value itself when constant).

        Raises :class:`ExpressionError` with ``key`` set to the failing dotted path.
        """
        if self._plan is None:
            return self._value
        return _resolve(self._plan, scope, extra)

    def __repr__(self) -> str:
        state = "constant" if self.constant else "templated"
        refs = ",".join(sorted(self.node_refs))
        return f"<CompiledValue {state} refs=[{refs}] errors={len(self.errors)}>"


def _resolve(plan: _Plan, scope: Scope, extra: dict[str, Any]) -> Any:
    kind = plan[0]
    if kind == "t":
        try:
            return plan[1].render(scope, **extra)
        except ExpressionError as exc:
            raise exc.locate(key=plan[2]) from exc
    out = plan[1].copy()
    for key, sub in plan[2]:
        out[key] = _resolve(sub, scope, extra)
    return out


class _ValueCompiler:
    def __init__(
        self,
        node_ids: frozenset[str] | None,
        limits: Limits,
        expression_paths: Iterable[str],
        deferred_paths: Iterable[str],
        opaque_paths: Iterable[str],
        prefix: str,
    ) -> None:
        self.node_ids = node_ids
        self.limits = limits
        self.patterns = [
            (kind, tuple(p.split(".")))
            for kind, paths in (
                ("opaque", opaque_paths),
                ("expression", expression_paths),
                ("deferred", deferred_paths),
            )
            for p in paths
        ]
        self.prefix = prefix.rstrip(".")
        self.node_refs: set[str] = set()
        self.roots: set[str] = set()
        self.errors: list[tuple[str, ExpressionError]] = []

    def kind(self, path: tuple[str, ...]) -> str | None:
        for kind, pattern in self.patterns:
            if len(pattern) == len(path) and all(
                p == "*" or p == s for p, s in zip(pattern, path, strict=True)
            ):
                return kind
        return None

    def note(self, compiled: Expression | Template | CompiledValue) -> None:
        self.node_refs |= compiled.node_refs
        self.roots |= compiled.roots

    def where(self, path: tuple[str, ...]) -> str:
        return ".".join((self.prefix, *path) if self.prefix else path)

    def error(self, path: tuple[str, ...], exc: ExpressionError) -> None:
        where = self.where(path)
        self.errors.append((where, exc.locate(key=where)))

    def walk(self, value: Any, path: tuple[str, ...]) -> tuple[Any, _Plan | None]:
        kind = self.kind(path) if self.patterns and path else None
        if kind == "opaque":
            return value, None
        if kind == "expression" and isinstance(value, str):
            return self.expression(value, path), None
        if kind == "deferred":
            return self.deferred(value, path), None
        if isinstance(value, str):
            if "{{" not in value:
                return value, None
            try:
                tpl = compile_template(value, node_ids=self.node_ids, limits=self.limits)
            except ExpressionError as exc:
                self.error(path, exc)
                return value, None
            assert isinstance(tpl, Template)
            self.note(tpl)
            return tpl, ("t", tpl, self.where(path))
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            changed: list[tuple[Any, Any]] = []
            plans: list[tuple[Any, _Plan]] = []
            for key, child in items:
                new, plan = self.walk(child, (*path, str(key)))
                if new is not child:
                    changed.append((key, new))
                if plan is not None:
                    plans.append((key, plan))
            if changed:
                value = value.copy()
                for key, new in changed:
                    value[key] = new
            return value, (
                ("d" if isinstance(value, dict) else "l"),
                value,
                plans,
            ) if plans else None
        return value, None

    def expression(self, text: str, path: tuple[str, ...]) -> Any:
        src = text
        stripped = text.strip()
        if stripped.startswith("{{") and stripped.endswith("}}"):
            # Braces are forgiven here: a setting that takes an expression, written as a template.
            try:
                parts = _split(stripped)
            except ExpressionError:
                parts = []
            if len(parts) == 1 and not isinstance(parts[0], str):
                src = parts[0][0]
        try:
            expr = compile_expression(src, node_ids=self.node_ids, limits=self.limits)
        except ExpressionError as exc:
            self.error(path, exc)
            return text
        self.note(expr)
        return expr

    def deferred(self, value: Any, path: tuple[str, ...]) -> Any:
        sub = _ValueCompiler(self.node_ids, self.limits, (), (), (), self.where(path))
        new, plan = sub.walk(value, ())
        self.node_refs |= sub.node_refs
        self.roots |= sub.roots
        self.errors += sub.errors
        if plan is None:
            return new
        if plan[0] == "t":
            return plan[1]
        return CompiledValue(new, plan, frozenset(sub.node_refs), frozenset(sub.roots), [])


def compile_value(
    value: Any,
    *,
    node_ids: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    expression_paths: Iterable[str] = (),
    deferred_paths: Iterable[str] = (),
    opaque_paths: Iterable[str] = (),
    path_prefix: str = "",
) -> CompiledValue:
    """Compile every ``{{ }}`` in a JSON value (a node's config), collecting all errors.

    Strings at ``expression_paths`` become :class:`Expression` objects; values at
    ``deferred_paths`` stay compiled for the block to render (a :class:`Template`, a
    :class:`CompiledValue`, or the plain value); ``opaque_paths`` are left alone. Paths are
    dotted, ``*`` matches any key or list index; error paths are ``path_prefix`` + the path.

        cv = compile_value({"url": "https://x/{{ $params.id }}"})
        cv.resolve(Scope(params={"id": 7}))  # {'url': 'https://x/7'}
    """
    compiler = _ValueCompiler(
        _ids(node_ids), limits, expression_paths, deferred_paths, opaque_paths, path_prefix
    )
    new, plan = compiler.walk(value, ())
    return CompiledValue(
        new, plan, frozenset(compiler.node_refs), frozenset(compiler.roots), compiler.errors
    )
