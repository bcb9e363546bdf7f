"""JSON text that keeps the layout of the file it replaces.

:func:`render_like` writes a workflow's data as JSON laid out like a previous version of its
file, so that saving an edited workflow changes only the edited lines. It works in two passes:

1. The old text is read into spans: where each value sits in the text and, for each container,
   its key order and the exact text between its children (indentation, line breaks, spacing
   around commas and colons).
2. The new value is written against those spans. A value equal to the old one (same types, same
   key order) is copied from the old text byte for byte; a changed container keeps the old
   one's layout and key order (new keys go last); a new container copies the layout of a
   sibling (another node, another edge) or, failing that, of the file as a whole (indent unit,
   one-line objects, separators, ``\\u`` escapes of non-ASCII characters).

List items are matched to old ones by equal value, then by ``id``, then by position, so a
reordered or edited list keeps the layout of each item. Line endings (``\\r\\n``) and the text
before and after the top-level value are kept. :func:`ordered_like` applies the same key order
to plain data: saving uses it for YAML files and to tell whether anything changed at all.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

__all__ = ["ordered_like", "render_like"]

_WS = re.compile(r"[ \t\n\r]*")
_ESCAPE = re.compile(r"\\(?:\\|u([0-9a-fA-F]{4}))")
_WIDTH = 88  # a new container of plain values goes on one line up to this width


@dataclasses.dataclass
class _Span:
    start: int
    end: int
    value: Any
    keys: list[str] = dataclasses.field(default_factory=list)
    members: dict[str, _Span] = dataclasses.field(default_factory=dict)
    items: list[_Span] = dataclasses.field(default_factory=list)
    # The text around the children of a container: before each child (from the second on
    # with its comma), then before the closing bracket.
    gaps: list[str] = dataclasses.field(default_factory=list)
    colon: str = ": "

    @property
    def head(self) -> str:
        return self.gaps[0] if len(self.gaps) > 1 else ""

    @property
    def tail(self) -> str:
        return self.gaps[-1] if len(self.gaps) > 1 else ""

    @property
    def sep(self) -> str:
        if len(self.gaps) > 2:
            return self.gaps[1]
        return "," + self.head if "\n" in self.head else ", "

    def before(self, index: int) -> str:
        """The separator in front of child ``index`` (the last one's for a new child)."""
        if index < 0:
            index = len(self.gaps) - 2
        return self.gaps[index] if 0 < index < len(self.gaps) - 1 else self.sep

    @property
    def inline(self) -> bool:
        return "\n" not in "".join(self.gaps)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()

    def skip(self, i: int) -> int:
        m = _WS.match(self.text, i)
        return m.end() if m else i

    def value(self, i: int) -> _Span:
        if self.text[i : i + 1] in ("{", "["):
            return self.container(i)
        value, end = self.decoder.raw_decode(self.text, i)
        return _Span(i, end, value)

    def container(self, i: int) -> _Span:
        t = self.text
        is_object = t[i] == "{"
        close = "}" if is_object else "]"
        span = _Span(i, i, {} if is_object else [])
        gaps: list[str] = []
        j = self.skip(i + 1)
        gaps.append(t[i + 1 : j])
        while t[j] != close:
            if is_object:
                key, k = self.decoder.raw_decode(t, j) if t[j] == '"' else (None, j)
                if not isinstance(key, str):
                    raise ValueError(f"expected a key at offset {j}")
                c = self.skip(k)
                if t[c] != ":" or key in span.members:
                    raise ValueError(f"unexpected text or duplicate key at offset {c}")
                v = self.skip(c + 1)
                if not span.keys:
                    span.colon = t[k:v]
                child = self.value(v)
                span.keys.append(key)
                span.members[key] = child
                span.value[key] = child.value
            else:
                child = self.value(j)
                span.items.append(child)
                span.value.append(child.value)
            a = self.skip(child.end)
            if t[a] == ",":
                j = self.skip(a + 1)
                gaps.append(t[child.end : j])
            elif t[a] == close:
                gaps.append(t[child.end : a])
                j = a
            else:
                raise ValueError(f"expected ',' or {close!r} at offset {a}")
        span.end = j + 1
        span.gaps = gaps if len(gaps) > 1 else []
        return span


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text would be: same types (1 is not 1.0 nor true) and same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _pair(new: list[Any], old: list[Any]) -> list[int | None]:
    """For each new item, the old item it continues: an equal one, the same ``id``, the same place."""
    out: list[int | None] = [None] * len(new)
    free = set(range(len(old)))
    by_text: dict[str, list[int]] = {}
    for n, o in enumerate(old):
        by_text.setdefault(json.dumps(o, default=repr), []).append(n)
    for i, item in enumerate(new):
        for n in by_text.get(json.dumps(item, default=repr), []):
            if n in free and _same(item, old[n]):
                out[i] = n
                free.discard(n)
                break
    ids = {
        o["id"]: n
        for n, o in enumerate(old)
        if isinstance(o, dict) and isinstance(o.get("id"), str)
    }
    for i, item in enumerate(new):
        if out[i] is None and isinstance(item, dict) and ids.get(item.get("id")) in free:
            out[i] = ids[item["id"]]
            free.discard(ids[item["id"]])
    for i, item in enumerate(new):
        if out[i] is None and i in free and type(old[i]) is type(item):
            out[i] = i
            free.discard(i)
    return out


def ordered_like(new: Any, old: Any) -> Any:
    """``new`` with the key order of ``old`` where they share keys (new keys last), recursively."""
    if isinstance(new, dict) and isinstance(old, dict):
        keys = [k for k in old if k in new] + [k for k in new if k not in old]
        return {k: ordered_like(new[k], old.get(k)) for k in keys}
    if isinstance(new, list) and isinstance(old, list):
        return [
            ordered_like(v, old[p] if p is not None else None)
            for v, p in zip(new, _pair(new, old), strict=True)
        ]
    return new


class _Writer:
    def __init__(self, text: str, root: _Span | None) -> None:
        self.text = text
        # \u escapes of non-ASCII characters in an all-ASCII file: keep writing them so.
        self.ascii = text.isascii() and any(
            m.group(1) and int(m.group(1), 16) > 0x7F for m in _ESCAPE.finditer(text)
        )
        self.unit, self.colon, self.comma, self.expanded = "  ", ": ", ", ", False
        lines = [ln for ln in text.splitlines() if ln.strip()]
        indents = [ln[: len(ln) - len(ln.lstrip())] for ln in lines if ln[:1] in (" ", "\t")]
        if indents:
            self.unit = "\t" if indents[0].startswith("\t") else " " * min(map(len, indents))
        if root is not None:
            spans = list(self._walk(root))
            inline = [s for s in spans if s.inline and (s.keys or s.items)]
            self.expanded = not root.inline and not inline
            for s in inline:
                if len(s.keys) + len(s.items) > 1:
                    self.comma = s.sep
                    break
            self.colon = next((s.colon for s in spans if s.keys), self.colon)

    def _walk(self, span: _Span) -> Any:
        if span.keys or span.items:
            yield span
        for child in [*span.members.values(), *span.items]:
            yield from self._walk(child)

    def scalar(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=self.ascii)

    def fits(self, value: dict[str, Any] | list[Any], indent: str) -> bool:
        children = value.values() if isinstance(value, dict) else value
        if self.expanded or any(isinstance(v, (dict, list)) and v for v in children):
            return False
        one_line = json.dumps(value, ensure_ascii=self.ascii, separators=(self.comma, self.colon))
        return len(indent) + len(one_line) <= _WIDTH

    def write(self, new: Any, old: _Span | None, like: _Span | None, indent: str | None) -> str:
        if old is not None and _same(new, old.value):
            return self.text[old.start : old.end]
        if not isinstance(new, (dict, list)):
            return self.scalar(new)
        if not new:
            return "{}" if isinstance(new, dict) else "[]"
        kind = type(new)
        ref = old if old is not None and type(old.value) is kind and old.value else None
        style = ref or (
            like if like is not None and type(like.value) is kind and like.value else None
        )
        if style is not None and (ref is not None or style.inline):
            head, sep, tail = style.head, style.sep, style.tail
        elif indent is None or (style is None and self.fits(new, indent)):
            head, sep, tail = "", self.comma, ""
        else:
            head, sep, tail = "\n" + indent + self.unit, ",\n" + indent + self.unit, "\n" + indent
        # Children of a one-line container are written on that line (indent None).
        inner = head.rsplit("\n", 1)[1] if "\n" in head else None
        parts: list[tuple[int, str]] = []  # (index of the child in the old container or -1, text)
        if isinstance(new, dict):
            colon = style.colon if style is not None else self.colon
            # Key order comes from the old version of this very object only; a sibling lends
            # its layout, not its order (ordered_like must agree).
            known = ref.keys if ref is not None else []
            where = {k: i for i, k in enumerate(known)}
            for k in [k for k in known if k in new] + [k for k in new if k not in known]:
                child = ref.members.get(k) if ref is not None else None
                text = self.write(new[k], child, self._cousin(k, new[k], like, style), inner)
                parts.append((where[k] if child else -1, self.scalar(k) + colon + text))
            brackets = "{}"
        else:
            olds = ref.items if ref is not None else []
            siblings = olds or (style.items if style is not None else [])
            sample = siblings[-1] if siblings else None
            for v, p in zip(new, _pair(new, [o.value for o in olds]), strict=True):
                text = self.write(v, olds[p] if p is not None else None, sample, inner)
                parts.append((-1 if p is None else p, text))
            brackets = "[]"
        out = [brackets[0], head]
        for n, (index, text) in enumerate(parts):
            if n:
                out.append(ref.before(index) if ref is not None else sep)
            out.append(text)
        out += [tail, brackets[1]]
        return "".join(out)

    @staticmethod
    def _cousin(key: str, value: Any, like: _Span | None, style: _Span | None) -> _Span | None:
        """A span to copy the layout of ``value`` from: the same key in a sibling, else a sibling."""
        if like is not None and key in like.members:
            return like.members[key]
        # In a map of objects (nodes, params, groups, pins) a new member looks like the last one.
        if (
            style is not None
            and isinstance(value, dict)
            and style.members
            and all(isinstance(m.value, dict) for m in style.members.values())
        ):
            return list(style.members.values())[-1]
        return None


def render_like(data: Any, old: str | None) -> str:
    """``data`` as JSON text laid out like ``old`` (a previous version of the file), if any."""
    if old is None:
        return _Writer("", None).write(data, None, None, "") + "\n"
    crlf = "\r\n" in old
    text = old.replace("\r\n", "\n") if crlf else old
    reader = _Reader(text)
    try:
        start = reader.skip(0)
        root: _Span | None = reader.value(start)
        if root is None or reader.skip(root.end) != len(text):
            raise ValueError("text after the workflow")
    except (ValueError, IndexError, RecursionError):
        root = None
    writer = _Writer(text, root)
    if root is None:
        out = writer.write(data, None, None, "") + ("\n" if text.endswith("\n") or not text else "")
    else:
        out = text[:start] + writer.write(data, root, None, "") + text[root.end :]
    return out.replace("\n", "\r\n") if crlf else out
