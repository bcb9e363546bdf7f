"""Shared type aliases and status enums; imports nothing heavy."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

JSON = Any
"""Any JSON value: dict, list, str, int, float, bool or None."""


class NodeStatus(str, Enum):
    """Status of one node in an execution; the values are the format's strings."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class ExecutionStatus(str, Enum):
    """Status of a whole execution."""

    QUEUED = "queued"  # recorded in the store, waiting for a worker
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"
    CRASHED = "crashed"  # set by the store for a run its process did not live to finish


NODE_TERMINAL = frozenset(
    {NodeStatus.SUCCESS, NodeStatus.ERROR, NodeStatus.SKIPPED, NodeStatus.CANCELLED}
)
EXECUTION_TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCESS,
        ExecutionStatus.ERROR,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.CRASHED,
    }
)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages: null, boolean, number, string, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
