"""conv3n-jupyter: notebook-native workflow automation.

    >>> import conv3n_jupyter as c3
    >>> wf = c3.load("templates/hello.conv3n.json")
    >>> result = await c3.run(wf, {"name": "Ada"})
    >>> result["output"]

Everything is imported lazily (PEP 562), so ``import conv3n_jupyter`` costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BlockError",
    "Conv3nError",
    "Execution",
    "ExpressionError",
    "Workflow",
    "WorkflowValidationError",
    "__version__",
    "debug",
    "from_notebook",
    "load",
    "load_ipython_extension",
    "run",
    "run_sync",
    "unload_ipython_extension",
]

_LAZY = {
    "load": "conv3n_jupyter.model",
    "Workflow": "conv3n_jupyter.model",
    "run": "conv3n_jupyter.engine.executor",
    "Execution": "conv3n_jupyter.engine.executor",
    "run_sync": "conv3n_jupyter._sync",
    "from_notebook": "conv3n_jupyter.jupyter.notebook",
    "load_ipython_extension": "conv3n_jupyter.jupyter.magics",
    "unload_ipython_extension": "conv3n_jupyter.jupyter.magics",
    "Conv3nError": "conv3n_jupyter.errors",
    "BlockError": "conv3n_jupyter.errors",
    "ExpressionError": "conv3n_jupyter.errors",
    "WorkflowValidationError": "conv3n_jupyter.errors",
}

if TYPE_CHECKING:
    from ._sync import run_sync
    from .engine.executor import Execution, run
    from .errors import BlockError, Conv3nError, ExpressionError, WorkflowValidationError
    from .model import Workflow, load


def debug(workflow: Any, params: Any = None, **kwargs: Any) -> Any:
    """Start a debug run of ``workflow`` (a :class:`Workflow`, a path or a dict); see ``Workflow.debug``."""
    from .model import Workflow, load

    wf = workflow if isinstance(workflow, Workflow) else load(workflow)
    return wf.debug(params, **kwargs)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conv3n_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
