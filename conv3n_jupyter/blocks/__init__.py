"""Blocks: the registry, the base class and the standard blocks."""

from __future__ import annotations

from .base import Block, NodeContext, Output
from .registry import UnknownBlockError, get, known_types, register, unregister

__all__ = [
    "Block",
    "NodeContext",
    "Output",
    "UnknownBlockError",
    "get",
    "known_types",
    "register",
    "unregister",
]
