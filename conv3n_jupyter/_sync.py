"""Run a workflow from synchronous code (scripts, tests, a plain Python REPL)."""

from __future__ import annotations

import asyncio
from typing import Any


def run_sync(workflow: Any, params: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run a workflow to the end in a new event loop and return its result dict.

        >>> from conv3n_jupyter import run_sync
        >>> run_sync("templates/hello.conv3n.json", {"name": "Ada"})["status"]
        'success'

    Inside a running loop (a notebook), ``await conv3n_jupyter.run(...)`` instead.
    """
    from .engine.executor import run

    return asyncio.run(run(workflow, params, **kwargs))
