"""Compiled bare expressions (``$item.price > 10``): the Python path and the CEL path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import _cel
from ..errors import ExpressionError
from . import _functions
from ._json import _SCALARS, KeyOrders, ordered_json
from ._paths import PathError, Trie, project, root_value, unset_reason, walk
from ._scope import Scope
from ._syntax import DEFAULT_LIMITS, Limits
from ._translate import (
    PREFIX,
    ROOT_SET,
    Occurrence,
    Translation,
    public_names,
    syntax_error,
    translate_checked,
)

_expressions: dict[tuple[Any, ...], Expression] = {}
_CACHE_MAX = 20_000
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


class Expression:
    """A compiled bare expression (no braces), e.g. ``$item.price > 10``.

    ``simple`` is True for a pure path (a root followed by ``.field``, ``["key"]`` and ``[0]``
    steps), which is evaluated in Python and returns the scope's value itself, uncopied.
    ``functions`` names the library functions it calls (``split``, ``math.greatest``); only
    those are handed to the engine, and an expression calling none runs without them.
    """

    __slots__ = (
        "_flat",
        "_flat_vars",
        "_full",
        "_full_vars",
        "_key",
        "_library",
        "_orders",
        "_root",
        "_steps",
        "functions",
        "node_refs",
        "roots",
        "simple",
        "source",
    )

    source: str
    node_refs: frozenset[str]
    roots: frozenset[str]
    simple: bool
    functions: frozenset[str]

    def __init__(self, src: str, node_ids: frozenset[str] | None, limits: Limits) -> None:
        self.source = src
        self._key = (src, node_ids, limits)
        tr = translate_checked(src, node_ids, limits)
        try:
            self._full = _cel.program(tr.text)
        except ValueError as exc:
            raise ExpressionError(syntax_error(str(exc), tr), expression=src) from exc
        names = _functions.needed(self._full.functions(), self._full.variables())
        self.functions = frozenset(names)
        self._library = _functions.table(names) if names else None
        self._orders: KeyOrders = {frozenset(k): k for k in tr.map_keys if len(set(k)) == len(k)}
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
    def _projections(occs: list[Occurrence]) -> tuple[tuple[str, Trie | None], ...]:
        tries: dict[str, Trie | None] = {}
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
            node: Trie = trie
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
        tr: Translation, tries: dict[str, Trie | None]
    ) -> tuple[Any, tuple[tuple[str, str, tuple[Any, ...], Trie | None], ...]]:
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
                return walk(root_value(scope, self._root, extra), steps, self._root)
            except PathError as exc:
                raise ExpressionError(exc.reason, expression=self.source) from None
        result, values = self._run(scope, extra)
        if type(result) in _SCALARS:
            return result
        return ordered_json(result, self._orders, values.values())

    def _run(self, scope: Scope, extra: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        failure: PathError | None = None
        if self._flat is not None:
            values = {}
            try:
                for name, root, steps, trie in self._flat_vars:
                    value = root_value(scope, root, extra)
                    if steps:
                        value = walk(value, steps, root)
                    elif trie is not None:
                        value = project(value, trie)
                    values[name] = value
            except PathError as exc:
                failure = exc  # CEL decides: the failing path may sit in an unevaluated branch
            else:
                return self._execute(self._flat, values, scope, failure), values
        values = {}
        for root, trie in self._full_vars:
            try:
                value = root_value(scope, root, extra)
            except PathError:
                continue
            values[PREFIX + root] = value if trie is None else project(value, trie)
        return self._execute(self._full, values, scope, failure), values

    def _execute(
        self, program: Any, values: dict[str, Any], scope: Scope, failure: PathError | None
    ) -> Any:
        try:
            if self._library is None:
                return program.execute(values)
            return program.execute(_cel.native().Context(values, functions=self._library))
        except Exception as exc:  # mapped at the boundary with the native engine
            reason = self._reason(exc, scope, failure)
            raise ExpressionError(reason, expression=self.source) from exc

    def _reason(self, exc: Exception, scope: Scope, failure: PathError | None) -> str:
        text = public_names(str(exc))
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
                    return unset_reason(name[len(PREFIX) :])
                return _functions.unknown_reason(name)
            reason = _functions.failure_reason(text)
            if reason is not None:
                return reason
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


def node_id_set(node_ids: Iterable[str] | None) -> frozenset[str] | None:
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
    ids = node_id_set(node_ids)
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
