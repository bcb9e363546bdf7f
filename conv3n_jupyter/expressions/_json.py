"""Expression results as plain JSON and as template text, with a stable key order for maps.

The engine hands maps back in hash order, which changes from one evaluation to the next. A
result map takes its key order from, in turn: a map literal in the expression with the same
keys (``{"b": 1, "a": 2}`` keeps ``b, a``), a map with the same keys among the values the
expression was given (``$input.items.filter(…)`` keeps each item's order), else sorted keys.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

_SCALARS = frozenset({str, int, float, bool, type(None)})
KeyOrders = dict[frozenset[Any], tuple[Any, ...]]


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _duration(value: timedelta) -> str:
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds}.{frac:06d}".rstrip("0") + "s" if frac else f"{sign}{seconds}s"


def _optional(value: Any) -> tuple[bool, Any]:
    """``(True, inner or None)`` for the engine's optional values (``[1].first()``)."""
    native = sys.modules.get("cel.cel")
    if native is not None and isinstance(value, native.OptionalValue):
        return True, value.value() if value.has_value() else None
    return False, None


def to_json_value(value: Any) -> Any:
    """Turn an expression result into plain JSON.

    Timestamps become ISO 8601 text (``Z`` for UTC), durations CEL's duration text
    (``"1.5s"``, which ``duration()`` reads back), bytes base64 text, map keys strings, an
    optional value its content (or null when empty).
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
    is_optional, inner = _optional(value)
    if is_optional:
        return to_json_value(inner)
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


# -- key order -----------------------------------------------------------------------------------


def ordered_json(value: Any, literal: KeyOrders, inputs: Iterable[Any]) -> Any:
    """:func:`to_json_value` of an engine result, maps in a stable order (see the module doc).

    ``literal`` maps a key set to the order a map literal of the expression wrote it in;
    ``inputs`` are the values the engine was given, searched only when needed.
    """
    if type(value) in _SCALARS:
        return value
    return _Orderer(literal, inputs).convert(value)


def _sort_key(key: Any) -> str:
    return key if type(key) is str else to_text(key)


class _Orderer:
    __slots__ = ("_found", "_inputs", "_literal", "_walk")

    def __init__(self, literal: KeyOrders, inputs: Iterable[Any]) -> None:
        self._literal = literal
        self._inputs = inputs
        self._found: KeyOrders = {}
        self._walk: Iterator[tuple[Any, ...]] | None = None

    def convert(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list:
            convert = self.convert
            return [convert(v) for v in value]
        if kind is dict:
            convert = self.convert
            keys = self.order(value) if len(value) > 1 else value
            return {k if type(k) is str else to_text(k): convert(value[k]) for k in keys}
        is_optional, inner = _optional(value)
        if is_optional:
            return self.convert(inner)
        return to_json_value(value)

    def order(self, value: dict[Any, Any]) -> tuple[Any, ...]:
        keys = frozenset(value)
        order = self._literal.get(keys) or self._found.get(keys)
        if order is None:
            order = self._search(keys) or tuple(sorted(value, key=_sort_key))
            self._found[keys] = order
        return order

    def _search(self, keys: frozenset[Any]) -> tuple[Any, ...] | None:
        # The walk resumes where the last search stopped: for a list of like items the first
        # item answers, and the inputs are walked at most once per evaluation.
        if self._walk is None:
            self._walk = _key_tuples(self._inputs)
        found = self._found
        for order in self._walk:
            candidate = frozenset(order)
            if candidate not in found:
                found[candidate] = order
                if candidate == keys:
                    return order
        return None


def _key_tuples(inputs: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """The key order of every map (with 2+ keys) in ``inputs``, depth first, once each."""
    seen: set[tuple[Any, ...]] = set()
    stack: list[Iterator[Any]] = [iter(inputs)]
    while stack:
        for value in stack[-1]:
            kind = type(value)
            if kind is dict:
                if len(value) > 1:
                    keys = tuple(value)
                    if keys not in seen:
                        seen.add(keys)
                        yield keys
                stack.append(iter(value.values()))
                break
            if kind is list or kind is tuple:
                stack.append(iter(value))
                break
        else:
            stack.pop()
