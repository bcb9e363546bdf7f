"""The function library beyond CEL's core: strings, math, lists, sets, encoders, url, json.

Most functions come from the engine package's pure-Python ``cel.stdlib`` (each checked to be
free of I/O and side effects); a few are replaced here by versions that bound their output or
run in linear time, and ``url.*``/``json.decode`` are our own. The library is loaded only when
an expression calls one of these names, so other expressions run as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .. import _cel

NAMESPACES = frozenset({"math", "sets", "base64", "lists", "strings", "url", "json"})
# Every name the library answers to, known without loading it. ``contains`` is left out on
# purpose: CEL's own ``"abc".contains("b")`` must not be slowed down, and ``x in list`` covers
# lists and maps.
NAMES = frozenset(
    {
        "bool", "min", "max", "sum",
        "charAt", "indexOf", "lastIndexOf", "substring", "replace", "split", "join",
        "lowerAscii", "upperAscii", "trim", "reverse", "strings.quote",
        "math.greatest", "math.least", "math.abs", "math.sign", "math.ceil", "math.floor",
        "math.round", "math.trunc", "math.isNaN", "math.isInf", "math.isFinite", "math.sqrt",
        "math.bitOr", "math.bitAnd", "math.bitXor", "math.bitNot", "math.bitShiftLeft",
        "math.bitShiftRight",
        "sets.contains", "sets.equivalent", "sets.intersects",
        "base64.encode", "base64.decode",
        "distinct", "flatten", "slice", "sort", "first", "last", "lists.range",
        "url.encode", "url.decode", "json.decode",
    }
)  # fmt: skip
MAX_TEXT = 10_000_000
"""Longest string a library function may return (characters)."""
MAX_RANGE = 1_000_000
"""Largest ``lists.range(n)``."""

_INT64 = range(-(2**63), 2**63)
_table: dict[str, Callable[..., Any]] | None = None


def needed(functions: Iterable[str], variables: Iterable[str]) -> tuple[str, ...]:
    """The library names a compiled program calls, from its ``functions()``/``variables()``.

    The engine reports ``math.greatest(x)`` as a call of ``greatest`` on a variable ``math``.
    """
    namespaces = NAMESPACES.intersection(variables)
    names = set()
    for fn in functions:
        if fn in NAMES:
            names.add(fn)
        for ns in namespaces:
            if f"{ns}.{fn}" in NAMES:
                names.add(f"{ns}.{fn}")
    return tuple(sorted(names))


def table(names: Iterable[str]) -> dict[str, Callable[..., Any]]:
    """The implementations of ``names`` (loading the library on first use)."""
    global _table
    if _table is None:
        _table = _build()
    return {name: _table[name] for name in names}


def _build() -> dict[str, Callable[..., Any]]:
    lib = _cel.stdlib().STDLIB_FUNCTIONS
    own: dict[str, Callable[..., Any]] = {
        "replace": replace,
        "join": join,
        "strings.quote": _bounded(lib["strings.quote"], "strings.quote"),
        "base64.encode": _bounded(lib["base64.encode"], "base64.encode"),
        "sum": _int64(lib["sum"]),
        "math.abs": _int64(lib["math.abs"]),
        "distinct": distinct,
        "sets.contains": sets_contains,
        "sets.equivalent": sets_equivalent,
        "sets.intersects": sets_intersects,
        "lists.range": lists_range,
        "url.encode": url_encode,
        "url.decode": url_decode,
        "json.decode": json_decode,
    }
    built = {name: own.get(name) or lib[name] for name in NAMES}
    _cel.quiet_failures_of(NAMES)
    return built


# -- bounded and linear versions -----------------------------------------------------------------


def _too_long(name: str) -> ValueError:
    return ValueError(f"{name}: the result would be longer than {MAX_TEXT:,} characters")


def _check_text(text: str, name: str) -> str:
    if len(text) > MAX_TEXT:
        raise _too_long(name)
    return text


def _bounded(fn: Callable[..., str], name: str) -> Callable[..., str]:
    # For functions whose result is at most twice their input: checking it bounds a chain.
    def call(*args: Any) -> str:
        return _check_text(fn(*args), name)

    return call


def _int64(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        result = fn(*args)
        if type(result) is int and result not in _INT64:
            raise OverflowError("integer overflow (integers are 64-bit)")
        return result

    return call


def replace(s: str, old: str, new: str, limit: int = -1) -> str:
    """``s`` with ``old`` replaced by ``new`` (at most ``limit`` times when not negative)."""
    count = s.count(old)
    if limit >= 0:
        count = min(count, limit)
    # Checked before building it: chained replaces grow a string exponentially.
    if len(s) + count * (len(new) - len(old)) > MAX_TEXT:
        raise _too_long("replace")
    return s.replace(old, new) if limit < 0 else s.replace(old, new, limit)


def join(items: list[Any], sep: str = "") -> str:
    """The items (strings) joined with ``sep`` between them."""
    strings = all(type(item) is str for item in items)
    if strings and sum(map(len, items)) + len(sep) * max(len(items) - 1, 0) > MAX_TEXT:
        raise _too_long("join")
    return sep.join(items)


class _Members:
    """Membership by ``==`` in linear time: hashable values in a set, the rest in a list."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.hashed: set[Any] = set()
        self.other: list[Any] = []
        for item in items:
            self.add(item)

    def add(self, item: Any) -> None:
        try:
            self.hashed.add(item)
        except TypeError:  # lists and maps: they only ever equal other lists and maps
            self.other.append(item)

    def __contains__(self, item: Any) -> bool:
        try:
            return item in self.hashed
        except TypeError:
            return item in self.other


def distinct(items: list[Any]) -> list[Any]:
    """The items without repeats, first occurrences kept in order."""
    seen = _Members()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def sets_contains(container: list[Any], sublist: list[Any]) -> bool:
    """Whether every item of ``sublist`` is in ``container``."""
    members = _Members(container)
    return all(item in members for item in sublist)


def sets_equivalent(a: list[Any], b: list[Any]) -> bool:
    """Whether ``a`` and ``b`` hold the same items (repeats and order aside)."""
    in_a, in_b = _Members(a), _Members(b)
    return all(item in in_b for item in a) and all(item in in_a for item in b)


def sets_intersects(a: list[Any], b: list[Any]) -> bool:
    """Whether ``a`` and ``b`` share an item."""
    in_b = _Members(b)
    return any(item in in_b for item in a)


def lists_range(n: int) -> list[int]:
    """``[0, 1, …, n - 1]``."""
    if n > MAX_RANGE:
        raise ValueError(f"lists.range: {n} is more than the limit of {MAX_RANGE:,}")
    return list(range(n))


# -- our own ---------------------------------------------------------------------------------


def url_encode(text: str) -> str:
    """Percent-encode ``text`` for a URL path segment or query value (``/`` included)."""
    from urllib.parse import quote

    return _check_text(quote(text, safe=""), "url.encode")


def url_decode(text: str) -> str:
    """Undo percent-encoding (``+`` stays a plus sign)."""
    from urllib.parse import unquote

    return unquote(text, errors="strict")


def json_decode(text: str) -> Any:
    """The JSON value ``text`` holds."""
    import json

    return json.loads(text)


# -- messages ------------------------------------------------------------------------------------

_FAILED = re.compile(
    r"Function '([^']+)' error: (?:Python function call failed: (?:\w+: )?)?(.*?)"
    r"(?:\. Check function arguments and their types\.)?\Z",
    re.S,
)
# CEL's own functions: the engine reports a call with unsupported argument types as an
# undefined name.
_BUILTINS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "string", "int", "uint",
        "double", "bytes", "timestamp", "duration", "dyn", "type", "getFullYear", "getMonth",
        "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes",
        "getSeconds", "getMilliseconds",
    }
)  # fmt: skip


def failure_reason(message: str) -> str | None:
    """A short reason for a library function's failure, from the engine's message."""
    m = _FAILED.match(message)
    if m is None:
        return None
    name, detail = m.group(1), m.group(2)
    short = name.rsplit(".", 1)[-1]
    if detail.startswith((f"{name}:", f"{short}:", f"{short}()")):
        return detail
    return f"{name}() failed: {detail}"


def unknown_reason(name: str) -> str:
    """Why the engine found no function or variable ``name``."""
    if name in NAMESPACES:
        known = sorted(n.split(".", 1)[1] for n in NAMES if n.startswith(name + "."))
        return f"unknown function in {name}.* (known: {', '.join(known)})"
    if name == "contains":
        return "contains() takes strings; for lists and maps write `x in list`"
    if name in _BUILTINS:
        return f"{name}() does not take arguments of these types (CEL converts nothing implicitly)"
    return f"unknown variable or function {name!r}"
