"""A small cache of parsed workflows for services that see the same definition again and again.

A server runs the same few workflows thousands of times; checking one (schemas, graph,
expressions) costs about a millisecond, far more than running a small one. The cache keys a
definition by a digest of its canonical JSON and its source label; only workflows that parsed
cleanly are kept, and a definition whose JSON is very large is parsed every time.

The cached :class:`~conv3n_jupyter.model.Workflow` is shared: callers must not edit it (the
engine never does).

    >>> cache = ParseCache()
    >>> wf = cache.parse({"name": "w", "nodes": {"a": {"type": "std/noop"}}}, "request body")
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Workflow

MAX_ENTRIES = 256
MAX_KEY_BYTES = 1024 * 1024  # larger definitions are parsed each time


def _parse(definition: Any, source: str) -> Workflow:
    from .model import parse

    return parse(definition, source=source)


class ParseCache:
    """Parsed workflows by definition, least recently used dropped first. Thread-safe."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, bytes], Workflow] = OrderedDict()
        self._lock = threading.Lock()

    def parse(
        self,
        definition: Any,
        source: str,
        parse: Callable[[Any, str], Workflow] = _parse,
    ) -> Workflow:
        """The workflow ``parse(definition, source)`` returns, from the cache when it can."""
        try:
            text = json.dumps(definition, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return parse(definition, source)  # not plain JSON: let the parser say why
        if len(text) > MAX_KEY_BYTES:
            return parse(definition, source)
        key = (source, hashlib.blake2b(text.encode(), digest_size=20).digest())
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found
        wf = parse(definition, source)
        with self._lock:
            self.misses += 1
            self._items[key] = wf
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return wf

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<ParseCache {len(self)} workflows, {self.hits} hits, {self.misses} misses>"
