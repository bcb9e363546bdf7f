"""The engine: DAG scheduler, events, runtime resources and the debugging hooks."""

from __future__ import annotations

from .events import Event, EventQueue
from .executor import Execution, resolve_params, run
from .runtime import Runtime

__all__ = ["Event", "EventQueue", "Execution", "Runtime", "resolve_params", "run"]
