"""Tokens of an expression, the limits checked before CEL parses it, and map-literal keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ExpressionError

MACROS = frozenset({"map", "filter", "exists", "all", "exists_one"})
MAX_TOKENS = 8192


@dataclass(frozen=True)
class Limits:
    """Limits an expression must pass before it reaches the CEL parser."""

    max_length: int = 4096
    max_depth: int = 32
    max_macro_depth: int = 3


DEFAULT_LIMITS = Limits()

TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//[^\n]*)
    | (?P<str>
          [bB]?[rR](?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?''')
        | [bB]?[rR](?:"[^"\n\r]*"|'[^'\n\r]*')
        | [bB]?(?:\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"|'''(?:\\[\s\S]|[^\\])*?''')
        | [bB]?(?:"(?:\\[\s\S]|[^\\"\n\r])*"|'(?:\\[\s\S]|[^\\'\n\r])*')
      )
    | (?P<root>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<num>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)
_SIMPLE_STR = re.compile(r"""(?:"([^"\\\n\r]*)"|'([^'\\\n\r]*)')\Z""")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SKIP = ("ws", "comment")


class Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


def tokenize(src: str) -> list[Token]:
    """Split ``src`` into tokens; string literals and comments stay whole."""
    tokens = []
    pos = 0
    end = len(src)
    match = TOKEN.match
    while pos < end:
        m = match(src, pos)
        assert m is not None and m.lastgroup is not None
        kind, text = m.lastgroup, m.group()
        if kind == "other" and text in "\"'":
            raise ExpressionError(
                f"unterminated string literal at column {pos + 1}", expression=src
            )
        tokens.append(Token(kind, text, pos, m.end()))
        pos = m.end()
    return tokens


def literal_string(text: str) -> str | None:
    """The value of a plain (unprefixed, escape-free) string literal, else None."""
    m = _SIMPLE_STR.match(text)
    if m is None:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


def is_identifier(key: str) -> bool:
    return _IDENT.match(key) is not None


def check_limits(src: str, tokens: list[Token], max_depth: int, max_macro_depth: int) -> None:
    """Reject nesting the CEL parser must never see (it can overflow the native stack)."""
    stack: list[bool] = []  # one entry per open bracket: True when it opens a macro's arguments
    macros = 0
    last_ident = ""
    count = 0
    for tok in tokens:
        if tok.kind in SKIP:
            continue
        count += 1
        if count > MAX_TOKENS:
            # Long operator chains recurse in the parser too (20,000 `+1` overflow its stack),
            # whatever max_length allows.
            raise ExpressionError(f"more than {MAX_TOKENS} tokens", expression=src[:80] + "…")
        text = tok.text
        if tok.kind == "other" and text in "([{":
            is_macro = text == "(" and last_ident in MACROS
            stack.append(is_macro)
            macros += is_macro
            if len(stack) > max_depth:
                raise ExpressionError(
                    f"nesting deeper than {max_depth} brackets at column {tok.start + 1}",
                    expression=src,
                )
            if macros > max_macro_depth:
                raise ExpressionError(
                    f"macros (map, filter, exists, all, exists_one) nested deeper than "
                    f"{max_macro_depth} at column {tok.start + 1}",
                    expression=src,
                )
        elif tok.kind == "other" and text in ")]}" and stack:
            macros -= stack.pop()
        last_ident = text if tok.kind == "ident" else ""


def map_literal_keys(tokens: list[Token]) -> tuple[tuple[str, ...], ...]:
    """The keys, in written order, of every map literal (2+ keys) whose keys are plain strings.

    ``{"b": 1, "a": x}`` gives ``("b", "a")``; a map with a computed key gives nothing. The
    engine returns maps in hash order, so this is the only record of the order written.
    """
    sig = [t for t in tokens if t.kind not in SKIP]
    found: list[tuple[str, ...]] = []
    # One frame per open bracket: the keys of a map literal so far, or None.
    frames: list[list[str] | None] = []
    for i, tok in enumerate(sig):
        if tok.kind != "other":
            continue
        text = tok.text
        if text in "([{":
            frames.append([] if text == "{" else None)
            if text == "{" and not _key_at(sig, i + 1, frames[-1]):
                frames[-1] = None
        elif text in ")]}":
            keys = frames.pop() if frames else None
            if text == "}" and keys and len(keys) > 1:
                found.append(tuple(keys))
        elif text == "," and frames and not _key_at(sig, i + 1, frames[-1]):
            frames[-1] = None
    return tuple(dict.fromkeys(found))


def _key_at(sig: list[Token], i: int, keys: list[str] | None) -> bool:
    """Record the entry starting at ``sig[i]`` if its key is a plain string literal."""
    if keys is None or i >= len(sig):
        return False
    tok = sig[i]
    if tok.text == "}":  # `{}` or a trailing comma
        return True
    if tok.kind != "str" or i + 1 >= len(sig) or sig[i + 1].text != ":":
        return False
    value = literal_string(tok.text)
    if value is None:
        return False
    keys.append(value)
    return True
