"""Shared type aliases and status enums; imports nothing heavy."""

from __future__ import annotations

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

    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"


NODE_TERMINAL = frozenset(
    {NodeStatus.SUCCESS, NodeStatus.ERROR, NodeStatus.SKIPPED, NodeStatus.CANCELLED}
)
EXECUTION_TERMINAL = frozenset(
    {ExecutionStatus.SUCCESS, ExecutionStatus.ERROR, ExecutionStatus.CANCELLED}
)
