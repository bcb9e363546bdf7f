"""Compiled bare expressions (``$item.price > 10``): the Python path and the CEL path.

An expression is evaluated in one of these ways, the first that applies:

- a pure path (``$input.items[0].price``) is walked in Python and its value returned as is;
- ``size(PATH)`` / ``PATH.size()`` is taken in Python (``len``) and handed to CEL as one
  integer, and a chain of macros on a path (``$input.items.filter(x, x.ok).map(x, x.id)``) is
  run in Python, its argument compiled once and evaluated by CEL per element (see
  ``_slots``): both grow linearly with the list, where CEL's macros grow with its square;
- every other static path becomes one CEL variable holding its value (the "flat" program);
- when a path is missing, or a value is one the Python path does not handle (``size()`` of a
  number, a macro over a string), the whole expression is evaluated by CEL alone, with each
  root cut down to the parts the expression can reach, so CEL gives its own result or error.

The Python macros follow the engine's semantics exactly: elements are visited in order and
the first error stops the macro; ``exists`` stops at the first true, ``all`` at the first
false; ``exists_one`` visits every element; a condition that is not a bool is an error. A map
is iterated over its keys. Where CEL evaluates a macro lazily (a branch not taken), so does
the Python path: the chain is a function of the flat program, called when CEL reaches it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import _cel
from ..errors import ExpressionError
from . import _functions
from ._json import _SCALARS, KeyOrders, ordered_json
from ._paths import PathError, Trie, project, root_value, unset_reason, walk
from ._scope import Scope
from ._slots import SlotSpec, StageSpec, find_slots
from ._syntax import DEFAULT_LIMITS, Limits
from ._translate import (
    PREFIX,
    ROOT_SET,
    Occurrence,
    Translation,
    bound_root,
    public_names,
    syntax_error,
    translate_checked,
    variable,
)

_expressions: dict[tuple[Any, ...], Expression] = {}
_CACHE_MAX = 20_000
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")
_SLOT_FAILED = re.compile("Function '(" + re.escape(PREFIX) + r"m\d+)' error")
_NO_BOUND: frozenset[str] = frozenset()


class _Fallback(Exception):
    """A value the Python path leaves to CEL: the expression is evaluated by CEL alone."""


def _size(value: Any) -> int:
    """The engine's ``size()``: the length of a list, map or bytes; of a string in UTF-8 bytes
    (the engine counts bytes where the CEL specification counts code points)."""
    kind = type(value)
    if kind is list or kind is dict or kind is bytes or kind is tuple:
        return len(value)
    if kind is str:
        if value.isascii():
            return len(value)
        try:
            return len(value.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: CEL reports it
            raise _Fallback from None
    raise _Fallback


def _not_bool(value: Any) -> ExpressionError:
    """The error CEL gives for a macro condition that is not a bool (taken from CEL itself)."""
    try:
        _cel.program(PREFIX + "p ? true : false").execute({PREFIX + "p": value})
    except Exception as exc:  # the engine's own error for this value
        return ExpressionError(public_names(str(exc)))
    return ExpressionError(f"a macro condition must be a bool, not {type(value).__name__}")


def _truth(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_bool(value)


class _Stage:
    """One macro of a chain evaluated in Python; its arguments are compiled expressions."""

    __slots__ = ("body", "kind", "then", "var")

    def __init__(
        self,
        spec: StageSpec,
        node_ids: frozenset[str] | None,
        limits: Limits,
        bound: frozenset[str],
    ) -> None:
        inner = bound | {spec.var}
        self.kind = spec.kind
        self.var = bound_root(spec.var)
        self.body = Expression(spec.args[0], node_ids, limits, inner)
        self.then = Expression(spec.args[1], node_ids, limits, inner) if spec.args[1:] else None

    def apply(self, items: Any, scope: Scope, extra: Mapping[str, Any]) -> Any:
        kind = type(items)
        if kind is not list and kind is not tuple and kind is not dict:
            raise _Fallback  # CEL's error (or whatever CEL makes of it)
        env = dict(extra)
        key = self.var
        body = self.body._value
        macro = self.kind
        if macro == "map":
            then = self.then
            if then is None:
                mapped = []
                for item in items:
                    env[key] = item
                    mapped.append(body(scope, env))
                return mapped
            picked = []
            for item in items:
                env[key] = item
                if _truth(body(scope, env)):
                    picked.append(then._value(scope, env))
            return picked
        if macro == "filter":
            kept = []
            for item in items:
                env[key] = item
                if _truth(body(scope, env)):
                    kept.append(item)
            return kept
        if macro == "exists":
            for item in items:
                env[key] = item
                if _truth(body(scope, env)):
                    return True
            return False
        if macro == "all":
            for item in items:
                env[key] = item
                if not _truth(body(scope, env)):
                    return False
            return True
        count = 0  # exists_one: CEL visits every element
        for item in items:
            env[key] = item
            count += _truth(body(scope, env))
        return count == 1


class _Slot:
    """A part of an expression computed in Python: a path, macros on it, then ``size()``."""

    __slots__ = ("end", "name", "root", "size", "stages", "start", "steps", "text")

    def __init__(self, spec: SlotSpec, name: str, stages: tuple[_Stage, ...]) -> None:
        self.root = spec.occ.root
        self.steps = tuple(spec.occ.steps)
        self.stages = stages
        self.size = spec.size
        self.start, self.end = spec.start, spec.end
        self.name = name
        self.text = name + "()" if stages else name

    def value(self, scope: Scope, extra: Mapping[str, Any]) -> tuple[Any, Any]:
        """The computed value, and the path's value (for the key order of result maps)."""
        received = walk(root_value(scope, self.root, extra), self.steps, self.root)
        value = received
        for stage in self.stages:
            value = stage.apply(value, scope, extra)
        if self.size:
            value = _size(value)
        return value, received


class _Calls:
    """The macro chains of one evaluation, as functions CEL calls when it reaches them."""

    __slots__ = ("errors", "extra", "fallback", "inputs", "scope")

    def __init__(self, scope: Scope, extra: Mapping[str, Any]) -> None:
        self.scope = scope
        self.extra = extra
        self.errors: dict[str, Exception] = {}
        self.fallback = False
        self.inputs: list[Any] = []

    def function(self, slot: _Slot) -> Callable[[], Any]:
        def call() -> Any:
            try:
                value, received = slot.value(self.scope, self.extra)
            except _Fallback:
                self.fallback = True
                raise
            except (ExpressionError, PathError) as exc:
                self.errors[slot.name] = exc
                raise
            self.inputs.append(received)
            return value

        return call

    def error(self, message: str) -> Exception | None:
        """The error of the chain CEL reports as failing in ``message``, if any."""
        m = _SLOT_FAILED.search(message)
        return self.errors.get(m.group(1)) if m is not None else None


def _quiet_slot_failures() -> None:
    # The engine logs a warning when a Python function fails; a failing chain is reported
    # as an ExpressionError (or absorbed by `||`/`&&`, as CEL absorbs a macro's error).
    logger = logging.getLogger("cel")
    if not any(f is _slot_log_filter for f in logger.filters):
        logger.addFilter(_slot_log_filter)


def _slot_log_filter(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(f"Python function '{PREFIX}")


class Expression:
    """A compiled bare expression (no braces), e.g. ``$item.price > 10``.

    ``simple`` is True for a pure path (a root followed by ``.field``, ``["key"]`` and ``[0]``
    steps), which is evaluated in Python and returns the scope's value itself, uncopied.
    ``functions`` names the library functions it calls (``split``, ``math.greatest``); only
    those are handed to the engine, and an expression calling none runs without them.
    """

    __slots__ = (
        "_calls",
        "_flat",
        "_flat_vars",
        "_full",
        "_full_vars",
        "_key",
        "_library",
        "_orders",
        "_root",
        "_sizes",
        "_steps",
        "_whole",
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

    def __init__(
        self,
        src: str,
        node_ids: frozenset[str] | None,
        limits: Limits,
        bound: frozenset[str] = _NO_BOUND,
    ) -> None:
        # ``bound``: the variables of enclosing macros run in Python (this is a macro's argument).
        self.source = src
        self._key = (src, node_ids, limits)
        tr = translate_checked(src, node_ids, limits, bound)
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
        slots = () if self.simple else self._slots(tr, node_ids, limits, bound)
        self._flat, self._flat_vars = self._flatten(tr, dict(self._full_vars), slots)
        self._whole: _Slot | None = None
        if self._flat is not None and len(slots) == 1:
            only = slots[0]
            if not tr.text[: only.start].strip() and not tr.text[only.end :].strip():
                self._whole = only
        used = slots if self._flat is not None else ()
        self._sizes = tuple(slot for slot in used if not slot.stages)
        self._calls = tuple(slot for slot in used if slot.stages)

    @staticmethod
    def _slots(
        tr: Translation, node_ids: frozenset[str] | None, limits: Limits, bound: frozenset[str]
    ) -> tuple[_Slot, ...]:
        slots: list[_Slot] = []
        for spec in find_slots(tr, bound):
            try:
                stages = tuple(_Stage(s, node_ids, limits, bound) for s in spec.stages)
            except ExpressionError:  # left to CEL, which reports it in context
                continue
            kind = "m" if stages else "n"
            slots.append(_Slot(spec, f"{PREFIX}{kind}{len(slots)}", stages))
        return tuple(slots)

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
        tr: Translation, tries: dict[str, Trie | None], slots: tuple[_Slot, ...]
    ) -> tuple[Any, tuple[tuple[str, str, tuple[Any, ...], Trie | None], ...]]:
        # Each static path becomes one variable: CEL converts a scalar far faster than a map.
        # A slot (see _slots) replaces its whole span: a variable, or a call of a function.
        pieces: list[str] = []
        names: dict[tuple[str, tuple[Any, ...]], str] = {}
        at = {slot.start: slot for slot in slots}
        starts = sorted(at)
        last = 0
        for occ in tr.occurrences:
            if occ.start < last:  # inside a slot's span
                continue
            if starts and starts[0] <= occ.start:
                slot = at[starts.pop(0)]  # the slot of this path (its span may open earlier)
                pieces += [tr.text[last : slot.start], slot.text]
                last = slot.end
            if occ.start < last:
                continue
            keep = len(occ.steps) - (1 if occ.in_has else 0)
            steps = tuple(occ.steps[:keep])
            if not steps:
                names[(occ.root, ())] = variable(occ.root)
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
        result, inputs = self._run(scope, extra)
        if type(result) in _SCALARS:
            return result
        return ordered_json(result, self._orders, inputs)

    def _value(self, scope: Scope, extra: Mapping[str, Any]) -> Any:
        """The engine's own result (not converted to JSON): a macro's argument, per element."""
        steps = self._steps
        if steps is not None:
            try:
                return walk(root_value(scope, self._root, extra), steps, self._root)
            except PathError as exc:
                raise ExpressionError(exc.reason, expression=self.source) from None
        return self._run(scope, extra)[0]

    def _run(self, scope: Scope, extra: Mapping[str, Any]) -> tuple[Any, Iterable[Any]]:
        failure: PathError | None = None
        whole = self._whole
        if whole is not None:
            try:
                value, received = whole.value(scope, extra)
            except PathError as exc:
                raise ExpressionError(exc.reason, expression=self.source) from None
            except ExpressionError as exc:
                raise ExpressionError(exc.reason, expression=self.source) from exc
            except _Fallback:
                pass
            else:
                return value, (received,)
        elif self._flat is not None:
            values = {}
            try:
                for name, root, steps, trie in self._flat_vars:
                    value = root_value(scope, root, extra)
                    if steps:
                        value = walk(value, steps, root)
                    elif trie is not None:
                        value = project(value, trie)
                    values[name] = value
                for slot in self._sizes:
                    values[slot.name] = slot.value(scope, extra)[0]
            except PathError as exc:
                failure = exc  # CEL decides: the failing path may sit in an unevaluated branch
            except _Fallback:
                pass
            else:
                if not self._calls:
                    return self._execute(self._flat, values, scope, failure), values.values()
                ran = self._call(values, scope, extra)
                if ran is not None:
                    return ran
        values = {}
        for root, trie in self._full_vars:
            try:
                value = root_value(scope, root, extra)
            except PathError:
                continue
            values[variable(root)] = value if trie is None else project(value, trie)
        return self._execute(self._full, values, scope, failure), values.values()

    def _call(
        self, values: dict[str, Any], scope: Scope, extra: Mapping[str, Any]
    ) -> tuple[Any, list[Any]] | None:
        """Run the flat program with the macro chains as functions; None: leave it to CEL."""
        calls = _Calls(scope, extra)
        functions = dict(self._library) if self._library is not None else {}
        for slot in self._calls:
            functions[slot.name] = calls.function(slot)
        _quiet_slot_failures()
        try:
            result = self._flat.execute(_cel.native().Context(values, functions=functions))
        except Exception as exc:  # mapped at the boundary with the native engine
            if calls.fallback:
                return None
            error = calls.error(str(exc))
            if isinstance(error, ExpressionError):
                raise ExpressionError(error.reason, expression=self.source) from exc
            if isinstance(error, PathError):
                raise ExpressionError(error.reason, expression=self.source) from exc
            raise ExpressionError(self._reason(exc, scope, None), expression=self.source) from exc
        if calls.fallback:
            return None
        return result, [*values.values(), *calls.inputs]

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
