"""The line protocol between the pool's supervisor and its worker processes.

One JSON object per line over a socket pair. Supervisor → worker::

    {"op": "run", "id": EID}
    {"op": "cancel", "id": EID, "reason": "cancelled by request"}
    {"op": "stop"}

Worker → supervisor::

    {"op": "ready", "pid": 123}
    {"op": "started", "id": EID, "timeout": 30.0}      # claimed; its effective timeout
    {"op": "event", "id": EID, "event": {...}}          # Event.to_dict()
    {"op": "done", "id": EID, "result": {...} | null}   # null: read the row from the store
    {"op": "beat", "rss": 81234944, "running": 3}       # every BEAT seconds

A message longer than the worker's limit is never sent whole: an event loses its data, a
result is replaced by ``null`` (the store holds the recorded, truncated result).
"""

from __future__ import annotations

import json
import os
from typing import Any

BEAT = 0.5
"""Seconds between a worker's heartbeats."""

MAX_MESSAGE = 16 * 1024 * 1024
"""Default longest line a worker sends, in bytes."""

_dumps = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line: ``message`` as compact JSON and a newline.

    >>> encode({"op": "stop"})
    b'{"op":"stop"}\\n'
    """
    return _dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message of one line; ``ValueError`` when it is not a JSON object with an ``op``."""
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError(f"not a protocol message: {line[:80]!r}")
    return message


def reader_limit(max_message: int) -> int:
    """The stream buffer limit that lets every line up to ``max_message`` bytes through."""
    return max(64 * 1024 * 1024, 2 * max_message)


def rss_of(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes; ``None`` if it is gone or unknown."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the server extra
        return _rss_proc(pid)
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


def _rss_proc(pid: int) -> int | None:  # pragma: no cover - only without psutil
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
