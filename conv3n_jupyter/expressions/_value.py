"""A node's whole config compiled at once (:func:`compile_value`), and :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ExpressionError
from ._expression import Expression, compile_expression, node_id_set
from ._scope import Scope
from ._syntax import DEFAULT_LIMITS, Limits
from ._template import Template, compile_template, split_template


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
                parts = split_template(stripped)
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
        node_id_set(node_ids), limits, expression_paths, deferred_paths, opaque_paths, path_prefix
    )
    new, plan = compiler.walk(value, ())
    return CompiledValue(
        new, plan, frozenset(compiler.node_refs), frozenset(compiler.roots), compiler.errors
    )
