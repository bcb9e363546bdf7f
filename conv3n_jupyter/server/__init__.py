"""The HTTP API of ``conv3n serve``: run, save, inspect and watch workflows over JSON.

Needs the ``server`` extra (FastAPI, uvicorn, prometheus-client, psutil)::

    from conv3n_jupyter.server import create_app
    from conv3n_jupyter.settings import load_settings
    app = create_app(load_settings())          # an ASGI app; serve it with uvicorn

Routes live in ``routes_*.py``; errors are always ``{"error": {"code", "message", "details"}}``
(``errors.py``); logs are JSON lines (``logs.py``); ``/metrics`` is Prometheus (``metrics.py``);
``/docs`` is a self-contained page built from the OpenAPI document (``docs.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        try:
            from .app import create_app
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                f"the HTTP API needs the server extra: pip install 'conv3n-jupyter[server]' ({exc})"
            ) from exc
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
