"""Config strings holding ``{{ EXPR }}`` parts: splitting, compiling and rendering them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ExpressionError
from ._expression import Expression, compile_expression, node_id_set
from ._json import to_text
from ._scope import Scope
from ._syntax import DEFAULT_LIMITS, TOKEN, Limits

_templates: dict[tuple[Any, ...], Template] = {}
_CACHE_MAX = 20_000


def has_template(text: str) -> bool:
    """Whether ``text`` holds a ``{{ }}`` template."""
    return "{{" in text


def split_template(text: str) -> list[str | tuple[str, int]]:
    """Literal text and ``(expression, offset)`` pieces; braces inside the expression nest."""
    parts: list[str | tuple[str, int]] = []
    pos = 0
    match = TOKEN.match
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
        for part in split_template(text):
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
    ids = node_id_set(node_ids)
    key = (text, ids, limits)
    tpl = _templates.get(key)
    if tpl is None:
        tpl = Template(text, ids, limits)
        if len(_templates) >= _CACHE_MAX:
            _templates.clear()
        _templates[key] = tpl
    return tpl
