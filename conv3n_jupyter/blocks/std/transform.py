"""``std/transform``: reshape data with a list of operations applied in order.

The value starts as ``input`` (default: the node's ``$input``) and goes through each operation:

========  ==============================================  =====================================
type      settings                                        effect
========  ==============================================  =====================================
pick      ``fields``                                      keep only these fields
omit      ``fields``                                      drop these fields
rename    ``mapping`` ``{"old": "new"}``                  move fields to new names
set       ``values`` ``{"a.b": value-or-template}``       set fields (templates see ``$item``,
                                                          ``$index``)
jsonpath  ``query``, ``first``                            the matches of a JSONPath query (a
                                                          list, or the first match or null)
map       ``expression``                                  each element → the expression's value
filter    ``expression`` (must give a boolean)            keep elements where it is true
sort      ``by`` (field; omit to sort scalars), ``desc``  stable sort; missing/null sort last
convert   ``fields`` ``{"price": "number"}``              number, integer, string, boolean,
                                                          date (ISO 8601 text)
========  ==============================================  =====================================

pick, omit, rename, set and convert work on an object, or on every element of a list of
objects (``set`` on a null value starts from an empty object). Field names are dotted paths
into nested objects (``"customer.address.city"``). ``map`` on a single object evaluates once
with ``$item`` = the object and ``$index`` = 0. ``convert`` leaves null and missing fields alone.

The input is never modified (other nodes see the same object): each operation copies only the
objects on the paths it changes.

    {"type": "std/transform", "config": {
        "input": "{{ $node.fetch.data.items }}",
        "operations": [
            {"type": "filter", "expression": "$item.stock > 0"},
            {"type": "set", "values": {"total": "{{ $item.price * $item.qty }}"}},
            {"type": "pick", "fields": ["id", "total"]}]}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ...errors import BlockError, ExpressionError, Problem
from ..base import Block, NodeContext, Output

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

_MISSING: Any = object()
_SCALARS = (str, int, float, bool, type(None))
_JSON_LEAVES = (*_SCALARS, dict, list)
CONVERSIONS = ("number", "integer", "string", "boolean", "date")

_FIELDS = {
    "type": ["array", "string"],
    "items": {"type": "string", "minLength": 1},
    "description": "field names; dotted paths reach into nested objects (`customer.name`)",
}
_BOOL_OR_EXPR = ["boolean", "string"]


def _operation(
    kind: str, description: str, props: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": kind}}},
        "then": {
            "description": description,
            "properties": {"type": {"const": kind}, **props},
            "required": ["type", *required],
            "additionalProperties": False,
        },
    }


# One sub-schema per operation type, selected by "type" (if/then reports the errors of the chosen
# type only; a oneOf would report "not valid under any of the given schemas").
_OPERATION_SCHEMAS: dict[str, dict[str, Any]] = {
    "pick": _operation("pick", "keep only these fields", {"fields": _FIELDS}, ["fields"]),
    "omit": _operation("omit", "remove these fields", {"fields": _FIELDS}, ["fields"]),
    "rename": _operation(
        "rename",
        "rename fields",
        {
            "mapping": {
                "type": ["object", "string"],
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": 'old name → new name, e.g. {"fullName": "name"}',
            }
        },
        ["mapping"],
    ),
    "set": _operation(
        "set",
        "set fields to values or per-element templates",
        {
            "values": {
                "type": "object",
                "description": "field → value; strings may hold {{ }} templates over $item, $index",
            }
        },
        ["values"],
    ),
    "jsonpath": _operation(
        "jsonpath",
        "the matches of a JSONPath query (jsonpath-ng extended syntax)",
        {
            "query": {"type": "string", "minLength": 1, "description": "e.g. `$.items[*].id`"},
            "first": {
                "type": _BOOL_OR_EXPR,
                "default": False,
                "description": "the first match (or null) instead of the list of matches",
            },
        },
        ["query"],
    ),
    "map": _operation(
        "map",
        "replace each element by an expression's value",
        {
            "expression": {
                "type": "string",
                "minLength": 1,
                "description": "an expression over $item and $index",
            }
        },
        ["expression"],
    ),
    "filter": _operation(
        "filter",
        "keep the elements for which the expression is true",
        {
            "expression": {
                "type": "string",
                "minLength": 1,
                "description": "a boolean expression over $item and $index",
            }
        },
        ["expression"],
    ),
    "sort": _operation(
        "sort",
        "sort a list (stable; null and missing values last)",
        {
            "by": {
                "type": "string",
                "description": "the field to sort by (dotted path); omit to sort the elements",
            },
            "desc": {"type": _BOOL_OR_EXPR, "default": False, "description": "descending order"},
        },
        [],
    ),
    "convert": _operation(
        "convert",
        "convert field values to another type",
        {
            "fields": {
                "type": ["object", "string"],
                "additionalProperties": {"enum": list(CONVERSIONS)},
                "description": 'field → target type, e.g. {"price": "number", "created": "date"}',
            }
        },
        ["fields"],
    ),
}
OPERATIONS = tuple(_OPERATION_SCHEMAS)


class Transform(Block):
    """Reshape data: pick, omit, rename, set, jsonpath, map, filter, sort, convert (in order)."""

    type = "std/transform"
    eager = True
    title = "Transform"
    description = (
        "Reshape data with operations applied in order: "
        "pick, omit, rename, set, jsonpath, map, filter, sort, convert."
    )
    icon = "⇄"
    config_schema = {
        "type": "object",
        "properties": {
            "input": {
                "description": "the value to transform, usually a template such as "
                "`{{ $node.fetch.data.items }}`; default: the node's $input",
            },
            "operations": {
                "type": "array",
                "default": [],
                "description": "operations applied in order, each an object with a `type`",
                "items": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": list(OPERATIONS), "description": "the operation"}
                    },
                    "allOf": list(_OPERATION_SCHEMAS.values()),
                },
            },
        },
        "additionalProperties": False,
    }
    ports = ("default",)
    expression_paths = ("operations.*.expression",)
    deferred_paths = ("operations.*.values.*",)

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        """Report JSONPath queries that do not parse (the schema covers unknown types)."""
        problems: list[Problem] = []
        operations = config.get("operations")
        if not isinstance(operations, list):
            return problems
        for i, op in enumerate(operations):
            if not isinstance(op, dict) or op.get("type") != "jsonpath":
                continue
            query = op.get("query")
            if isinstance(query, str) and "{{" not in query:
                try:
                    _jsonpath(query)
                except Exception as exc:  # jsonpath-ng raises several unrelated classes
                    problems.append(
                        Problem(
                            f"{path}.operations[{i}].query",
                            f"invalid JSONPath query {query!r}: {exc}",
                            key="operations",
                        )
                    )
        return problems

    async def run(self, ctx: NodeContext) -> Output:
        config = ctx.config
        value = config.get("input", ctx.input)
        for i, op in enumerate(config.get("operations") or ()):
            if not isinstance(op, dict):
                raise _fail(i, "?", f"an operation must be an object, not {_type_name(op)}")
            kind = op.get("type")
            if not isinstance(kind, str) or kind not in _APPLY:
                raise _fail(
                    i, str(kind), f"unknown operation {kind!r}; known: {', '.join(OPERATIONS)}"
                )
            value = _APPLY[kind](_Op(i, kind, op, ctx), value)
        return Output(value)


# -- plumbing ----------------------------------------------------------------------------------


class _Op:
    __slots__ = ("ctx", "index", "kind", "op")

    def __init__(self, index: int, kind: str, op: Mapping[str, Any], ctx: NodeContext) -> None:
        self.index = index
        self.kind = kind
        self.op = op
        self.ctx = ctx

    def fail(self, message: str) -> BlockError:
        return _fail(self.index, self.kind, message)

    def setting(
        self, key: str, kinds: type | tuple[type, ...], what: str, default: Any = _MISSING
    ) -> Any:
        value = self.op.get(key, default)
        if value is _MISSING:
            raise self.fail(f"'{key}' is required")
        if not isinstance(value, kinds) or (bool not in _tuple(kinds) and isinstance(value, bool)):
            raise self.fail(f"'{key}' must be {what}, not {_type_name(value)}")
        return value

    def fields(self) -> list[tuple[str, ...]]:
        fields = self.setting("fields", list, "a list of field names")
        if not all(isinstance(f, str) and f for f in fields):
            raise self.fail("'fields' must be a list of non-empty strings")
        return [_parts(f) for f in fields]

    def evaluate(self, compiled: Any, key: str, item: Any, index: int | None) -> Any:
        try:
            return self.ctx.evaluate(compiled, item=item, index=index or 0)
        except ExpressionError as exc:
            where = f" (element {index})" if index is not None else ""
            raise ExpressionError(
                exc.reason + where,
                expression=exc.expression,
                node=exc.node,
                key=exc.key or f"operations.{self.index}.{key}",
            ) from exc


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _fail(index: int, kind: str, message: str) -> BlockError:
    return BlockError(
        f"operations.{index} ({kind}): {message}", block_type=Transform.type, retryable=False
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _where(index: int | None) -> str:
    return "the value" if index is None else f"element {index}"


@lru_cache(maxsize=1024)
def _parts(field: str) -> tuple[str, ...]:
    return tuple(field.split("."))


@lru_cache(maxsize=256)
def _jsonpath(query: str) -> JSONPath:
    # Imported here: jsonpath-ng's parser costs ~0.1 s to import and most transforms never use it.
    from jsonpath_ng.ext.parser import parse

    return parse(query)


def _each(op: _Op, value: Any, fn: Callable[[Any, int | None], Any]) -> Any:
    """Apply ``fn`` to every element of a list, or to a single value (index ``None``)."""
    if isinstance(value, list):
        return [fn(elem, i) for i, elem in enumerate(value)]
    return fn(value, None)


def _need_object(op: _Op, elem: Any, index: int | None) -> dict[str, Any]:
    if not isinstance(elem, dict):
        raise op.fail(f"{_where(index)} is a {_type_name(elem)}, not an object")
    return elem


def _get(obj: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(obj, dict):
            return _MISSING
        obj = obj.get(part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


# ``owned`` maps id → dict for the dicts this operation created for the current element: only
# those may be written; any other dict on a path is copied first. Holding the dicts (not just
# their ids) keeps an id from being reused by a foreign object.


def _put(obj: dict[str, Any], parts: tuple[str, ...], value: Any, owned: dict[int, Any]) -> None:
    """Set ``parts`` in ``obj`` (which must be owned), copying foreign dicts along the way."""
    for part in parts[:-1]:
        child = obj.get(part)
        if not isinstance(child, dict):
            child = {}
            owned[id(child)] = child
            obj[part] = child
        elif id(child) not in owned:
            child = dict(child)
            owned[id(child)] = child
            obj[part] = child
        obj = child
    obj[parts[-1]] = value


def _without(obj: dict[str, Any], parts: tuple[str, ...], owned: dict[int, Any]) -> dict[str, Any]:
    """``obj`` without the field at ``parts`` (the same object when the field is absent)."""
    if _get(obj, parts) is _MISSING:
        return obj
    if id(obj) not in owned:
        obj = dict(obj)
        owned[id(obj)] = obj
    cur = obj
    for part in parts[:-1]:
        child = cur[part]
        if id(child) not in owned:
            child = dict(child)
            owned[id(child)] = child
            cur[part] = child
        cur = child
    del cur[parts[-1]]
    return obj


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _is_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _SCALARS)


# -- operations --------------------------------------------------------------------------------


def _pick(op: _Op, value: Any) -> Any:
    paths = op.fields()
    flat = [p[0] for p in paths if len(p) == 1] if all(len(p) == 1 for p in paths) else None

    def pick(elem: Any, index: int | None) -> Any:
        elem = _need_object(op, elem, index)
        if flat is not None:
            return {f: elem[f] for f in flat if f in elem}
        out: dict[str, Any] = {}
        owned = {id(out): out}
        for parts in paths:
            found = _get(elem, parts)
            if found is not _MISSING:
                _put(out, parts, found, owned)
        return out

    return _each(op, value, pick)


def _omit(op: _Op, value: Any) -> Any:
    paths = op.fields()

    def omit(elem: Any, index: int | None) -> Any:
        elem = _need_object(op, elem, index)
        owned: dict[int, Any] = {}
        for parts in paths:
            elem = _without(elem, parts, owned)
        return elem

    return _each(op, value, omit)


def _rename(op: _Op, value: Any) -> Any:
    mapping = op.setting("mapping", dict, "an object of old name → new name")
    pairs = []
    for old, new in mapping.items():
        if not isinstance(new, str) or not new:
            raise op.fail(f"mapping[{old!r}] must be a non-empty string, not {_type_name(new)}")
        pairs.append((_parts(old), _parts(new)))

    def rename(elem: Any, index: int | None) -> Any:
        elem = _need_object(op, elem, index)
        owned: dict[int, Any] = {}
        for old, new in pairs:
            found = _get(elem, old)
            if found is _MISSING:
                continue
            elem = _without(elem, old, owned)
            _put(elem, new, found, owned)
        return elem

    return _each(op, value, rename)


def _set(op: _Op, value: Any) -> Any:
    values = op.setting("values", dict, "an object of field → value")
    # Each entry: (path, field, value, mode); mode 0 = constant, 1 = copy per element,
    # 2 = a compiled template, 3 = a container with templates inside.
    entries: list[tuple[tuple[str, ...], str, Any, int]] = []
    for field, val in values.items():
        if isinstance(val, _SCALARS):
            mode = 0
        elif isinstance(val, (dict, list)):
            mode = 1 if _is_plain(val) else 3
        else:
            mode = 2
        entries.append((_parts(field), field, val, mode))
    nested = any(len(parts) > 1 for parts, _f, _v, _m in entries)

    def render(val: Any, field: str, item: Any, index: int | None) -> Any:
        if isinstance(val, dict):
            return {k: render(v, field, item, index) for k, v in val.items()}
        if isinstance(val, list):
            return [render(v, field, item, index) for v in val]
        if isinstance(val, _SCALARS):
            return val
        return op.evaluate(val, f"values.{field}", item, index)

    def set_(elem: Any, index: int | None) -> Any:
        source = {} if elem is None else _need_object(op, elem, index)
        out = dict(source)
        owned = {id(out): out} if nested else {}
        for parts, field, val, mode in entries:
            if mode == 2:
                val = op.evaluate(val, f"values.{field}", source, index)
            elif mode == 1:
                val = _copy_json(val)
            elif mode == 3:
                val = render(val, field, source, index)
            if len(parts) == 1:
                out[parts[0]] = val
            else:
                _put(out, parts, val, owned)
        return out

    return _each(op, value, set_)


def _jsonpath_op(op: _Op, value: Any) -> Any:
    query = op.setting("query", str, "a JSONPath query")
    first = op.setting("first", bool, "true or false", False)
    try:
        parsed = _jsonpath(query)
    except Exception as exc:  # jsonpath-ng raises several unrelated classes
        raise op.fail(f"invalid JSONPath query {query!r}: {exc}") from exc
    try:
        matches = [m.value for m in parsed.find(value)]
    except Exception as exc:  # errors inside extended filters/arithmetic on odd data
        raise op.fail(f"JSONPath query {query!r} failed: {exc}") from exc
    if first:
        return matches[0] if matches else None
    return matches


def _map(op: _Op, value: Any) -> Any:
    expr = op.setting("expression", object, "an expression")
    if isinstance(value, list):
        return [op.evaluate(expr, "expression", elem, i) for i, elem in enumerate(value)]
    return op.evaluate(expr, "expression", value, None)


def _filter(op: _Op, value: Any) -> Any:
    expr = op.setting("expression", object, "an expression")
    if not isinstance(value, list):
        raise op.fail(f"needs a list, got {_type_name(value)}")
    kept = []
    for i, elem in enumerate(value):
        result = op.evaluate(expr, "expression", elem, i)
        if result is True:
            kept.append(elem)
        elif result is not False:
            raise op.fail(
                f"the expression must give true or false; "
                f"for element {i} it gave {_type_name(result)} {result!r:.80}"
            )
    return kept


_SORT_KINDS = {bool: "boolean", int: "number", float: "number", str: "string"}


def _sort(op: _Op, value: Any) -> Any:
    by = op.op.get("by")
    if by is not None and (not isinstance(by, str) or not by):
        raise op.fail(f"'by' must be a field name, not {_type_name(by)}")
    desc = op.setting("desc", bool, "true or false", False)
    if not isinstance(value, list):
        raise op.fail(f"needs a list, got {_type_name(value)}")
    parts = _parts(by) if by else None
    present: list[tuple[Any, Any]] = []
    missing: list[Any] = []
    kind_seen: tuple[str, int] | None = None
    for i, elem in enumerate(value):
        key = elem if parts is None else _get(elem, parts)
        if key is None or key is _MISSING:
            missing.append(elem)
            continue
        kind = _SORT_KINDS.get(type(key))
        what = f"field {by!r}" if by else "the elements"
        if kind is None:
            raise op.fail(f"cannot sort by {what}: element {i} has a {_type_name(key)}")
        if kind_seen is None:
            kind_seen = (kind, i)
        elif kind != kind_seen[0]:
            raise op.fail(
                f"cannot sort by {what}: mixed types "
                f"({kind_seen[0]} at element {kind_seen[1]}, {kind} at element {i})"
            )
        present.append((key, elem))
    present.sort(key=lambda pair: pair[0], reverse=desc)
    return [elem for _key, elem in present] + missing


def _convert(op: _Op, value: Any) -> Any:
    spec = op.setting("fields", dict, "an object of field → type")
    targets = []
    for field, target in spec.items():
        converter = _CONVERTERS.get(target) if isinstance(target, str) else None
        if converter is None:
            raise op.fail(
                f"fields[{field!r}]: unknown type {target!r}; known: {', '.join(CONVERSIONS)}"
            )
        parts = _parts(field)
        targets.append((parts, parts[0] if len(parts) == 1 else None, field, target, converter))

    def convert(elem: Any, index: int | None) -> Any:
        elem = _need_object(op, elem, index)
        out = None
        owned: dict[int, Any] = {}
        for parts, key, field, target, converter in targets:
            old = elem.get(key) if key is not None else _get(elem, parts)
            if old is _MISSING or old is None:
                continue
            try:
                new = converter(old)
            except (ValueError, TypeError, OverflowError, OSError) as exc:
                raise op.fail(
                    f"field {field!r} of {_where(index)}: "
                    f"cannot convert {old!r:.80} to {target} ({exc})"
                ) from None
            if new is old:
                continue
            if out is None:
                out = dict(elem)
                owned[id(out)] = out
            if key is not None:
                out[key] = new
            else:
                _put(out, parts, new, owned)
        return elem if out is None else out

    return _each(op, value, convert)


# -- conversions -------------------------------------------------------------------------------

_INT_TEXT = re.compile(r"^[+-]?\d+$")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if (text.isascii() and text.isdigit()) or _INT_TEXT.match(text):
            return int(text)
        # float() also takes "1_000", "nan" and "inf", which are not numbers in JSON.
        if _FLOAT_TEXT.match(text):
            number = float(text)
            if math.isfinite(number):
                return number
        raise ValueError("not a number")
    raise TypeError(f"a {_type_name(value)} is not a number")


def _to_integer(value: Any) -> int:
    number = _to_number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not a whole number")
        return int(number)
    return number


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raise TypeError(f"a {_type_name(value)} has no text form")


_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("expected true/false, yes/no, on/off or 1/0")
    raise TypeError(f"a {_type_name(value)} is not a boolean")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _to_date(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a date")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _FLOAT_TEXT.match(text):
            return datetime.fromtimestamp(float(text), tz=timezone.utc).isoformat()
        if _DATE_ONLY.match(text):
            return date.fromisoformat(text).isoformat()
        if text.endswith(("Z", "z")):  # fromisoformat accepts "Z" only from Python 3.11
            text = text[:-1] + "+00:00"
        return datetime.fromisoformat(text).isoformat()
    raise TypeError(f"a {_type_name(value)} is not a date")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "number": _to_number,
    "integer": _to_integer,
    "string": _to_string,
    "boolean": _to_boolean,
    "date": _to_date,
}

_APPLY: dict[str, Callable[[_Op, Any], Any]] = {
    "pick": _pick,
    "omit": _omit,
    "rename": _rename,
    "set": _set,
    "jsonpath": _jsonpath_op,
    "map": _map,
    "filter": _filter,
    "sort": _sort,
    "convert": _convert,
}
