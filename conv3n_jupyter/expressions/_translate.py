"""Rewriting ``$`` roots into CEL identifiers, recording each static path, mapping parse errors.

``$input.items[0].price`` becomes ``_c3_input.items[0].price``; each root occurrence keeps its
static steps (``.field``, ``["key"]``, ``[0]``) so that paths can be evaluated in Python or
handed to CEL as one value each. The body of a macro evaluated in Python (see ``_slots``) is
translated with its bound variable as a further root: ``x`` in ``x.price > 10`` is recorded
as root ``@x`` and left as ``x`` in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ExpressionError
from ._syntax import (
    SKIP,
    Limits,
    Token,
    check_limits,
    literal_string,
    map_literal_keys,
    tokenize,
)

PREFIX = "_c3_"
ROOTS = (
    "node", "input", "params", "trigger", "vars", "secrets", "env",
    "execution", "workflow", "now", "item", "index",
)  # fmt: skip
ROOT_SET = frozenset(ROOTS)
KNOWN_ROOTS = ", ".join("$" + r for r in ROOTS)

_SIMPLE_INT = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_NODE_RUN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INTERNAL = re.compile(re.escape(PREFIX) + r"([A-Za-z0-9_]+)")


@dataclass
class Occurrence:
    """One use of a root followed by static steps (``.field``, ``["key"]``, ``[0]``)."""

    root: str
    steps: list[str | int]
    start: int  # span in the translated text
    ends: list[int]  # ends[k]: end of the occurrence after k steps
    in_has: bool = False
    first: int = 0  # index of its first token in Translation.tokens
    after: int = 0  # index of the first token after its static steps


@dataclass
class Translation:
    source: str
    text: str
    roots: frozenset[str]
    node_refs: frozenset[str]
    occurrences: list[Occurrence]
    offsets: list[int] = field(repr=False)  # translated index -> source index
    map_keys: tuple[tuple[str, ...], ...] = ()  # see map_literal_keys
    tokens: list[Token] = field(default_factory=list, repr=False)  # the source's tokens


def bound_root(name: str) -> str:
    """The root name recording a macro's bound variable ``name``."""
    return "@" + name


def variable(root: str) -> str:
    """The CEL identifier of a root: ``_c3_input`` for ``input``, ``x`` for ``@x``."""
    return root[1:] if root[0] == "@" else PREFIX + root


def translate(
    src: str, node_ids: frozenset[str] | None, bound: frozenset[str] = frozenset()
) -> Translation:
    """Rewrite ``$root`` references into CEL identifiers and record where they are.

    Identifiers in ``bound`` (bound variables of enclosing macros) are recorded as roots too.
    """
    tokens = tokenize(src)
    return _Translator(src, tokens, node_ids, bound).run()


def translate_checked(
    src: str,
    node_ids: frozenset[str] | None,
    limits: Limits,
    bound: frozenset[str] = frozenset(),
) -> Translation:
    """:func:`translate` after checking ``limits`` (length, nesting, token count)."""
    max_length = limits.max_length
    if len(src) > max_length:
        raise ExpressionError(
            f"expression is {len(src)} characters long, more than the limit of {max_length}",
            expression=src[:80] + "…",
        )
    if not src.strip():
        raise ExpressionError("empty expression", expression=src)
    tokens = tokenize(src)
    check_limits(src, tokens, limits.max_depth, limits.max_macro_depth)
    tr = _Translator(src, tokens, node_ids, bound).run()
    tr.map_keys = map_literal_keys(tokens)
    return tr


class _Translator:
    def __init__(
        self,
        src: str,
        tokens: list[Token],
        node_ids: frozenset[str] | None,
        bound: frozenset[str] = frozenset(),
    ) -> None:
        self.src = src
        self.tokens = tokens
        self.node_ids = node_ids
        self.bound = bound
        self.out: list[str] = []
        self.offsets: list[int] = []
        self.length = 0
        self.roots: set[str] = set()
        self.node_refs: set[str] = set()
        self.occurrences: list[Occurrence] = []
        self.i = 0

    def fail(self, reason: str) -> ExpressionError:
        return ExpressionError(reason, expression=self.src)

    def emit(self, text: str, src_pos: int, src_end: int | None = None) -> None:
        self.out.append(text)
        if src_end is not None and src_end - src_pos == len(text):
            self.offsets.extend(range(src_pos, src_end))
        else:
            self.offsets.extend([src_pos] * len(text))
        self.length += len(text)

    def peek(self, j: int) -> tuple[int, Token | None]:
        """The next significant token at or after index ``j``."""
        while j < len(self.tokens) and self.tokens[j].kind in SKIP:
            j += 1
        return j, (self.tokens[j] if j < len(self.tokens) else None)

    def prev_significant(self, j: int) -> Token | None:
        j -= 1
        while j >= 0 and self.tokens[j].kind in SKIP:
            j -= 1
        return self.tokens[j] if j >= 0 else None

    def copy_through(self, j: int) -> None:
        """Copy tokens ``self.i`` .. ``j`` (inclusive) unchanged."""
        for tok in self.tokens[self.i : j + 1]:
            self.emit(tok.text, tok.start, tok.end)
        self.i = j + 1

    def run(self) -> Translation:
        toks = self.tokens
        while self.i < len(toks):
            tok = toks[self.i]
            if tok.kind == "root":
                self.root(tok)
                continue
            if tok.kind == "ident" and tok.text.startswith(PREFIX):
                raise self.fail(f"names starting with {PREFIX!r} are reserved")
            if tok.kind == "ident" and tok.text in self.bound and self.is_variable():
                self.bound_variable(tok)
                continue
            if tok.kind == "other" and tok.text == "$":
                raise self.fail(f"'$' must start a root name ({KNOWN_ROOTS})")
            self.emit(tok.text, tok.start, tok.end)
            self.i += 1
        self.offsets.append(len(self.src))
        return Translation(
            source=self.src,
            text="".join(self.out),
            roots=frozenset(self.roots),
            node_refs=frozenset(self.node_refs),
            occurrences=self.occurrences,
            offsets=self.offsets,
            tokens=self.tokens,
        )

    def is_variable(self) -> bool:
        """Whether the identifier at ``self.i`` names a variable (not a field or a function)."""
        before = self.prev_significant(self.i)
        _, after = self.peek(self.i + 1)
        return (before is None or before.text != ".") and (after is None or after.text != "(")

    def bound_variable(self, tok: Token) -> None:
        occ = Occurrence(bound_root(tok.text), [], self.length, [], first=self.i)
        self.emit(tok.text, tok.start, tok.end)
        occ.ends.append(self.length)
        self.i += 1
        self.steps(occ)
        self.finish(occ, occ.first)

    def root(self, tok: Token) -> None:
        name = tok.text[1:]
        if name not in ROOT_SET:
            raise self.fail(f"unknown root '${name}' (known roots: {KNOWN_ROOTS})")
        before = self.prev_significant(self.i)
        glued = tok.start > 0 and (
            self.src[tok.start - 1].isalnum() or self.src[tok.start - 1] == "_"
        )
        if glued or (before is not None and before.text == "."):
            raise self.fail(f"'${name}' cannot follow {before.text if before else ''!r}")
        self.roots.add(name)
        index = self.i
        occ = Occurrence(name, [], self.length, [], first=index)
        self.emit(PREFIX + name, tok.start)
        occ.ends.append(self.length)
        self.i += 1
        if name == "node":
            self.node_id(occ)
            occ.ends.append(self.length)
        self.steps(occ)
        self.finish(occ, index)

    def finish(self, occ: Occurrence, index: int) -> None:
        occ.after = self.i
        # has(x.f) needs a field selection as its argument, so it is flattened one step short.
        j = index - 1
        while j >= 0 and self.tokens[j].kind in SKIP:
            j -= 1
        if j >= 0 and self.tokens[j].text == "(":
            fn = self.prev_significant(j)
            _, after = self.peek(self.i)
            occ.in_has = (
                fn is not None and fn.text == "has" and after is not None and after.text == ")"
            )
        self.occurrences.append(occ)

    def node_id(self, occ: Occurrence) -> None:
        j, tok = self.peek(self.i)
        usage = '$node must be followed by a node id: $node.ID or $node["ID"]'
        if tok is not None and tok.text == ".":
            j2, idtok = self.peek(j + 1)
            if idtok is None or idtok.kind != "ident":
                raise self.fail(usage)
            run = _NODE_RUN.match(self.src, idtok.start)
            assert run is not None
            node_id = self.match_node_id(run.group(), idtok.start)
            end = idtok.start + len(node_id)
            # Skip every token that the (possibly dashed) id covers.
            k = j2
            while k < len(self.tokens) and self.tokens[k].end <= end:
                k += 1
            if k < len(self.tokens) and self.tokens[k].start < end:
                raise self.fail(usage)
            if "-" in node_id:
                self.emit(f'["{node_id}"]', tok.start)
            else:
                self.emit("." + node_id, tok.start)
            self.i = k
        elif tok is not None and tok.text == "[":
            j2, lit = self.peek(j + 1)
            j3, close = self.peek(j2 + 1)
            value = literal_string(lit.text) if lit is not None and lit.kind == "str" else None
            if value is None or close is None or close.text != "]":
                raise self.fail(usage)
            if self.node_ids is not None and value not in self.node_ids:
                raise self.fail(self.unknown_node(value))
            self.emit(f'["{value}"]', tok.start)
            node_id = value
            self.i = j3 + 1
        else:
            raise self.fail(usage)
        self.node_refs.add(node_id)
        occ.steps.append(node_id)

    def match_node_id(self, run: str, pos: int) -> str:
        if self.node_ids is None:
            return run.split("-", 1)[0]
        # Greedy: the longest known id that the run starts with, ending at a '-' or the run's end.
        cut = len(run)
        while cut > 0:
            candidate = run[:cut]
            if candidate in self.node_ids:
                return candidate
            cut = run.rfind("-", 0, cut)
        raise self.fail(self.unknown_node(run))

    def unknown_node(self, name: str) -> str:
        assert self.node_ids is not None
        known = sorted(self.node_ids)
        shown = ", ".join(known[:20]) + (f", … ({len(known) - 20} more)" if len(known) > 20 else "")
        return f"unknown node {name!r} (known nodes: {shown or 'none'})"

    def steps(self, occ: Occurrence) -> None:
        """Consume the static ``.f`` / ``["k"]`` / ``[0]`` steps following a root."""
        while True:
            j, tok = self.peek(self.i)
            if tok is None:
                return
            if tok.text == ".":
                j2, name = self.peek(j + 1)
                if name is None or name.kind != "ident" or name.text.startswith(PREFIX):
                    return
                _, after = self.peek(j2 + 1)
                if after is not None and after.text == "(":  # a method call, not a field
                    return
                self.copy_through(j2)
                occ.steps.append(name.text)
            elif tok.text == "[":
                j2, lit = self.peek(j + 1)
                j3, close = self.peek(j2 + 1)
                if lit is None or close is None or close.text != "]":
                    return
                step: str | int | None = None
                if lit.kind == "str":
                    step = literal_string(lit.text)
                elif lit.kind == "num" and _SIMPLE_INT.match(lit.text):
                    step = int(lit.text)
                if step is None:
                    return
                self.copy_through(j3)
                occ.steps.append(step)
            else:
                return
            occ.ends.append(self.length)


# -- messages -----------------------------------------------------------------------------------

_PARSE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")


def public_names(text: str) -> str:
    """Replace internal identifiers with the ``$`` names the user wrote."""
    return _INTERNAL.sub(lambda m: "$" + m.group(1), text)


def syntax_error(message: str, tr: Translation) -> str:
    """CEL's parse error, re-pointed at the user's text."""
    m = _PARSE_ERROR.search(message)
    if m is None:
        text = message.split("': ", 1)[-1] if message.startswith("Failed to parse") else message
        return public_names(text)
    line, col, reason = int(m.group(1)), int(m.group(2)), public_names(m.group(3))
    lines = tr.text.split("\n")
    offset = sum(len(s) + 1 for s in lines[: line - 1]) + col - 1
    src_offset = tr.offsets[max(0, min(offset, len(tr.offsets) - 1))]
    src_line_no = tr.source.count("\n", 0, src_offset) + 1
    line_start = tr.source.rfind("\n", 0, src_offset) + 1
    src_col = src_offset - line_start + 1
    src_line = tr.source.split("\n")[src_line_no - 1]
    where = f"line {src_line_no}, column {src_col}" if "\n" in tr.source else f"column {src_col}"
    return f"{reason} at {where}\n| {src_line}\n| {'.' * (src_col - 1)}^"
