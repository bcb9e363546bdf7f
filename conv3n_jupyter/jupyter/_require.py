"""One clear error when the ``[jupyter]`` extra is missing, instead of a bare ModuleNotFoundError."""

from __future__ import annotations

import importlib.util

EXTRA = "pip install 'conv3n-jupyter[jupyter]'"


def require(*modules: str) -> None:
    """Raise an ImportError naming the extra to install if any of ``modules`` is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"the notebook layer needs {', '.join(missing)}, which the jupyter extra "
            f"installs: {EXTRA}"
        )
