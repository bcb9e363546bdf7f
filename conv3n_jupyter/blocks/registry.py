"""The block registry: built-in blocks load lazily by type, third-party ones by entry point.

Third-party packages register blocks in the entry-point group ``conv3n.blocks``; each entry
point names a :class:`~conv3n_jupyter.blocks.base.Block` subclass (``"acme/ping =
acme_blocks.ping:PingBlock"``), the entry point's name being the block type.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import Conv3nError

if TYPE_CHECKING:
    from .base import Block

ENTRY_POINT_GROUP = "conv3n.blocks"

# type -> "module:Class"; imported only when a workflow uses the type, to keep start-up fast.
_BUILTIN: dict[str, str] = {
    "std/http_request": "conv3n_jupyter.blocks.std.http_request:HttpRequest",
    "std/transform": "conv3n_jupyter.blocks.std.transform:Transform",
    "std/condition": "conv3n_jupyter.blocks.std.condition:Condition",
    "std/loop": "conv3n_jupyter.blocks.std.loop:Loop",
    "std/delay": "conv3n_jupyter.blocks.std.delay:Delay",
    "std/set_var": "conv3n_jupyter.blocks.std.variables:SetVar",
    "std/get_var": "conv3n_jupyter.blocks.std.variables:GetVar",
    "std/file": "conv3n_jupyter.blocks.std.file:File",
    "std/database": "conv3n_jupyter.blocks.std.database:Database",
    "std/noop": "conv3n_jupyter.blocks.std.noop:Noop",
    "std/subworkflow": "conv3n_jupyter.blocks.std.subworkflow:SubWorkflow",
    "custom/code": "conv3n_jupyter.blocks.custom.code:Code",
}

_specs: dict[str, str] = dict(_BUILTIN)
_loaded: dict[str, Block] = {}
_entry_points_scanned = False


class UnknownBlockError(Conv3nError, KeyError):
    """No block is registered under that type."""

    def __init__(self, block_type: str, known: list[str]) -> None:
        import difflib

        self.block_type = block_type
        self.known = known
        close = difflib.get_close_matches(block_type, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"unknown block type {block_type!r}{hint}; known types: {', '.join(known)}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def register(block: type[Block] | Block, block_type: str | None = None) -> None:
    """Register a block class (or instance) under its ``type`` (or ``block_type``)."""
    instance = block() if isinstance(block, type) else block
    name = block_type or instance.type
    _loaded[name] = instance
    _specs.setdefault(name, f"{type(instance).__module__}:{type(instance).__qualname__}")


def unregister(block_type: str) -> None:
    """Remove a block type (tests use it to restore the registry)."""
    _loaded.pop(block_type, None)
    if block_type not in _BUILTIN:
        _specs.pop(block_type, None)


def _scan_entry_points() -> None:
    global _entry_points_scanned
    if _entry_points_scanned:
        return
    _entry_points_scanned = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _specs.setdefault(ep.name, ep.value)


def known_types() -> list[str]:
    """Every registered block type, sorted."""
    _scan_entry_points()
    return sorted(_specs)


def _load(spec: str) -> Block:
    module_name, _, attr = spec.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj  # type: ignore[return-value]


def get(block_type: str) -> Block:
    """The block registered under ``block_type``; raises :class:`UnknownBlockError` naming the known ones."""
    block = _loaded.get(block_type)
    if block is not None:
        return block
    spec = _specs.get(block_type)
    if spec is None:
        _scan_entry_points()
        spec = _specs.get(block_type)
        if spec is None:
            raise UnknownBlockError(block_type, known_types())
    block = _load(spec)
    _loaded[block_type] = block
    return block
