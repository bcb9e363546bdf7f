"""Hypothesis strategies shared by the tests: JSON values, node ids, path expressions."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

# Text CEL can hold: no lone surrogates (they are not valid UTF-8).
json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True) | json_text

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=20,
)
"""Any JSON value CEL can represent (64-bit integers, finite floats)."""

node_ids = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}(-[A-Za-z0-9_]{1,4}){0,2}", fullmatch=True)
"""Node ids as the format allows them, dashes included."""

# Field names CEL's parser reads as keywords.
_RESERVED = {"in", "true", "false", "null"}
_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in _RESERVED and not s.startswith("_c3_")
)

ROOTS_WITH_VALUES = ("input", "params", "trigger", "vars", "item")


def step_text(step: str | int, dotted: bool) -> str:
    """One accessor as source text: ``.name``, ``["key"]`` or ``[3]``."""
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if dotted else f"[{json.dumps(step, ensure_ascii=False)}]"


@st.composite
def paths_into(draw: st.DrawFn, value: Any, max_steps: int = 5) -> list[str | int]:
    """A path of steps that mostly follows ``value`` and sometimes leaves it."""
    steps: list[str | int] = []
    cur = value
    for _ in range(draw(st.integers(0, max_steps))):
        if isinstance(cur, dict) and cur and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(cur)))
            if not isinstance(key, str) or any(c in '"\\' or not c.isprintable() for c in key):
                break
            steps.append(key)
            cur = cur[key]
        elif isinstance(cur, list) and cur and draw(st.booleans()):
            index = draw(st.integers(0, len(cur) + 1))
            steps.append(index)
            cur = cur[index] if index < len(cur) else None
        else:
            steps.append(draw(identifiers | st.integers(0, 3)))
            cur = None
    return steps


@st.composite
def path_expressions(draw: st.DrawFn, value: Any) -> tuple[str, str, list[str | int]]:
    """``(source, root, steps)``: a pure path expression into ``value`` under a random root."""
    root = draw(st.sampled_from(ROOTS_WITH_VALUES))
    steps = draw(paths_into(value))
    text = "$" + root
    for step in steps:
        dotted = isinstance(step, str) and _ASCII_NAME.fullmatch(step) is not None
        dotted = dotted and step not in _RESERVED
        dotted = dotted and not step.startswith("_c3_") and draw(st.booleans())
        text += step_text(step, dotted)
    return text, root, steps


@st.composite
def node_reference_sets(draw: st.DrawFn) -> tuple[list[str], list[str], str]:
    """``(ids, referenced, expression)``: an expression that references some of ``ids``."""
    ids = draw(st.lists(node_ids, min_size=1, max_size=8, unique=True))
    refs = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=6))
    parts = []
    for ref in refs:
        bracket = draw(st.booleans())
        access = f'$node["{ref}"]' if bracket else f"$node.{ref}"
        field = draw(st.sampled_from(["data", "port", "status"]))
        parts.append(f"has({access}.{field})")
    joiner = draw(st.sampled_from([" || ", " && "]))
    return ids, refs, joiner.join(parts)


template_texts = st.lists(
    st.one_of(
        st.text(st.characters(exclude_characters="{}", exclude_categories=("Cs",)), max_size=8),
        st.sampled_from(["{{ $input.a }}", "{{ $params.n }}", "{{ 1 + 2 }}", "{{ 'x' }}"]),
    ),
    max_size=5,
).map("".join)
"""Config strings mixing literal text and a few known expressions."""


@st.composite
def record_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Lists of like records: the same keys (in one order, not sorted) with JSON values."""
    keys = draw(st.lists(identifiers, min_size=2, max_size=6, unique=True))
    values = st.fixed_dictionaries({k: json_values for k in keys})
    return draw(st.lists(values, min_size=1, max_size=6))
