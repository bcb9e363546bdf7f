"""The notebook face: live graph, inspector, debugger, magics and notebook ↔ workflow.

Needs the ``[jupyter]`` extra. Nothing here is imported by the engine or the CLI; the
submodules are imported lazily so ``import conv3n_jupyter.jupyter`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Debugger",
    "GraphView",
    "Inspector",
    "NodeRun",
    "Run",
    "describe_dependencies",
    "from_notebook",
    "load_ipython_extension",
    "to_notebook",
]

_WIDGETS = {"Debugger", "GraphView", "Inspector"}
_LAZY = {
    "Debugger": "conv3n_jupyter.jupyter.debugger",
    "GraphView": "conv3n_jupyter.jupyter.graph",
    "Inspector": "conv3n_jupyter.jupyter.inspector",
    "NodeRun": "conv3n_jupyter.jupyter.run",
    "Run": "conv3n_jupyter.jupyter.run",
    "describe_dependencies": "conv3n_jupyter.jupyter.notebook",
    "from_notebook": "conv3n_jupyter.jupyter.notebook",
    "to_notebook": "conv3n_jupyter.jupyter.notebook",
    "load_ipython_extension": "conv3n_jupyter.jupyter.magics",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conv3n_jupyter.jupyter' has no attribute {name!r}")
    if name in _WIDGETS:
        from ._require import require

        require("ipywidgets", "ipycytoscape")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
