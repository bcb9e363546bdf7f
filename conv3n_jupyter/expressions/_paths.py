"""Static paths (``$input.items[0].price``) evaluated in Python, with errors that say what
is missing; and projections, the parts of a root an expression can reach."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._scope import ATTRS, LOOP_ONLY, UNSET, Scope
from ._syntax import is_identifier


class PathError(Exception):
    def __init__(self, reason: str, key: Any = None) -> None:
        self.reason = reason
        self.key = key


def root_value(scope: Scope, root: str, extra: Mapping[str, Any]) -> Any:
    if extra and root in extra:
        return extra[root]
    value = getattr(scope, ATTRS[root])
    if value is UNSET:
        raise PathError(unset_reason(root), root)
    return value


def unset_reason(root: str) -> str:
    if root in LOOP_ONLY:
        return f"${root} is only available inside std/loop expressions and loop bodies"
    return f"${root} is not available here"


def walk(cur: Any, steps: tuple[Any, ...], root: str) -> Any:
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
            raise PathError(
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
            raise PathError(f"index {step} out of range for {where} (a list of {len(cur)})", step)
        raise PathError(f"{where} is a list, not an object: it has no field {step!r}", step)
    what = "null" if cur is None else _type_name(cur)
    access = f"item [{step}]" if type(step) is int else f"field {step!r}"
    raise PathError(f"{where} is {what}, not an object or list: it has no {access}", step)


def _missing(cur: Mapping[Any, Any], steps: tuple[Any, ...], i: int, root: str) -> PathError:
    step = steps[i]
    if root == "node" and i == 0:
        return PathError(
            f"node {step!r} has no result: it has not run (is it upstream of this node?)", step
        )
    keys = [str(k) for k in list(cur)[:12]]
    more = f", … ({len(cur) - 12} more)" if len(cur) > 12 else ""
    available = f"available: {', '.join(keys)}{more}" if keys else "it is empty"
    where = _path_text(root, steps[:i])
    return PathError(f"no field {step!r} in {where} ({available})", step)


def _path_text(root: str, steps: Iterable[Any]) -> str:
    out = [root[1:] if root[0] == "@" else "$" + root]  # "@x": a macro's bound variable
    for step in steps:
        if type(step) is int:
            out.append(f"[{step}]")
        elif is_identifier(step):
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


Trie = dict[Any, Any]  # key -> sub-trie, or None for "the whole value"


def project(value: Any, trie: Trie) -> Any:
    """The parts of ``value`` an expression can reach: converting less makes CEL faster."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return value
    out = {}
    for key, sub in trie.items():
        if key in value:
            out[key] = value[key] if sub is None else project(value[key], sub)
    return out
