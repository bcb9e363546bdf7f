"""Finding the parts of an expression that are computed in Python rather than by CEL.

Two shapes are found, each starting at a static path (a root followed by ``.field``,
``["key"]`` and ``[0]`` steps, see ``_translate``):

- ``size(PATH)`` and ``PATH.size()``: the length is taken in Python, so CEL is handed one
  integer instead of the whole list, map or string;
- a chain of macros on a path, ``PATH.filter(x, …).map(y, …)``, optionally inside
  ``size(…)`` or followed by ``.size()``: the macros run in Python, each argument being a
  small CEL program evaluated once per element. The CEL engine builds a macro's result by
  copying it at every step, so its time grows with the square of the list's length; this
  way it grows linearly.

A macro chain is only taken when it does not sit inside the arguments of another macro (whose
bound variables it could read), and a macro is only taken when its bound variable shadows no
variable of an enclosing macro.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from ._functions import NAMESPACES
from ._syntax import MACROS, SKIP, Token
from ._translate import PREFIX, Occurrence, Translation

# Identifiers CEL reserves or gives a meaning of its own: never taken as a bound variable.
_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while", "has", "dyn", "int", "uint", "double", "bool", "string", "bytes",
        "list", "map", "type", "null_type", "optional",
    }
)  # fmt: skip
_PREDICATES = frozenset({"exists", "all", "exists_one"})  # give a bool: nothing can follow


@dataclass(frozen=True)
class StageSpec:
    """One macro of a chain: ``kind(var, args…)``, each arg the source text of an expression."""

    kind: str
    var: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class SlotSpec:
    """A part computed in Python: the path ``occ``, then ``stages``, then ``size`` if set.

    ``start``/``end`` is its span in the translated text (including ``size(`` … ``)``).
    """

    occ: Occurrence
    stages: tuple[StageSpec, ...]
    size: bool
    start: int
    end: int


class _Tokens:
    """The significant tokens of a source, with matching brackets and macro nesting."""

    def __init__(self, tokens: list[Token]) -> None:
        self.full = [i for i, t in enumerate(tokens) if t.kind not in SKIP]
        self.toks = [tokens[i] for i in self.full]
        self.close: dict[int, int] = {}
        self.in_macro: list[bool] = []
        stack: list[tuple[int, bool]] = []
        depth = 0
        toks = self.toks
        for k, tok in enumerate(toks):
            self.in_macro.append(depth > 0)
            if tok.kind != "other":
                continue
            if tok.text in "([{":
                is_macro = tok.text == "(" and k > 0 and toks[k - 1].text in MACROS
                stack.append((k, is_macro))
                depth += is_macro
            elif tok.text in ")]}" and stack:
                opened, is_macro = stack.pop()
                self.close[opened] = k
                depth -= is_macro

    def text(self, k: int) -> str:
        return self.toks[k].text if 0 <= k < len(self.toks) else ""

    def at(self, full_index: int) -> int:
        """The index of the first significant token at or after token ``full_index``."""
        return bisect_left(self.full, full_index)

    def args(self, opened: int) -> list[tuple[int, int]] | None:
        """The ``(first, last)`` token ranges of the arguments of the call opened at ``opened``."""
        close = self.close.get(opened)
        if close is None or close == opened + 1:
            return None
        out = []
        start = k = opened + 1
        while k < close:
            tok = self.toks[k]
            if tok.kind == "other" and tok.text in "([{":
                k = self.close.get(k, close)
            elif tok.kind == "other" and tok.text == ",":
                if k == start:
                    return None
                out.append((start, k - 1))
                start = k + 1
            k += 1
        if start >= close:
            return None  # a trailing comma
        out.append((start, close - 1))
        return out

    def rebinds(self, first: int, last: int, names: frozenset[str]) -> bool:
        """Whether a macro between ``first`` and ``last`` binds one of ``names`` again."""
        for k in range(first, last + 1):
            if (
                self.toks[k].text in MACROS
                and self.text(k + 1) == "("
                and self.text(k + 2) in names
                and self.text(k + 3) == ","
            ):
                return True
        return False


def find_slots(tr: Translation, bound: frozenset[str] = frozenset()) -> list[SlotSpec]:
    """The ``size(PATH)`` and macro-chain parts of ``tr``, in order of their paths.

    ``bound`` names the variables of the enclosing macros evaluated in Python.
    """
    if not any(t.text == "size" or t.text in MACROS for t in tr.tokens):
        return []
    toks = _Tokens(tr.tokens)
    src = tr.source
    offsets = tr.offsets

    def translated(k: int) -> int:
        # Bracket and ``size`` tokens are copied unchanged, so their position maps back exactly.
        return bisect_left(offsets, toks.toks[k].start)

    found: list[SlotSpec] = []
    for occ in tr.occurrences:
        if occ.in_has:
            continue
        first = toks.at(occ.first)
        k = toks.at(occ.after)
        stages: list[StageSpec] = []
        while not toks.in_macro[first] and toks.text(k) == ".":
            kind = toks.text(k + 1)
            if kind not in MACROS or toks.text(k + 2) != "(":
                break
            stage = _stage(toks, src, k + 2, kind, bound)
            if stage is None:
                break
            stages.append(stage)
            k = toks.close[k + 2] + 1
            if kind in _PREDICATES:
                break
        end = k - 1
        start = occ.start
        size = False
        if toks.text(k) == "." and toks.text(k + 1) == "size":
            size = toks.text(k + 2) == "(" and toks.text(k + 3) == ")"
            end = k + 3
        elif (
            toks.text(first - 1) == "("
            and toks.text(first - 2) == "size"
            and toks.text(first - 3) != "."
            and toks.close.get(first - 1) == k
        ):
            size = True
            start = translated(first - 2)
            end = k
        if not size and not stages:
            continue
        if found and start < found[-1].end:
            continue  # inside the arguments of the previous chain, which compiles them itself
        found.append(SlotSpec(occ, tuple(stages), size, start, translated(end) + 1))
    return found


def _stage(
    toks: _Tokens, src: str, opened: int, kind: str, bound: frozenset[str]
) -> StageSpec | None:
    args = toks.args(opened)
    if args is None or len(args) not in ((2, 3) if kind == "map" else (2,)):
        return None
    (var_first, var_last), *rest = args
    var = toks.toks[var_first]
    name = var.text
    if (
        var_first != var_last
        or var.kind != "ident"
        or name.startswith(PREFIX)
        or name in _RESERVED
        or name in NAMESPACES
        or name in bound
    ):
        return None
    names = bound | {name}
    if any(toks.rebinds(a, b, names) for a, b in rest):
        return None
    texts = tuple(src[toks.toks[a].start : toks.toks[b].end] for a, b in rest)
    return StageSpec(kind, name, texts)
