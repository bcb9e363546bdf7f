"""The persistent store: workflows with versions, execution history, variables, artifacts.

Needs the ``store`` extra (SQLAlchemy, Alembic). SQLite by default, PostgreSQL by URL::

    from conv3n_jupyter.store import open_store, record_run
    store = open_store("sqlite:///./conv3n.db")      # migrates to the newest schema
    result = await record_run(store, "templates/hello.conv3n.json")

Store functions live in ``workflows``, ``executions``, ``variables`` and ``maintenance``; each
takes the store (or a connection from ``store.begin()``) first.
"""

from __future__ import annotations

try:
    import sqlalchemy as _sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the store needs SQLAlchemy and Alembic: pip install 'conv3n-jupyter[store]'"
    ) from exc

from .database import Store, normalize_url, open_store, upgrade
from .recorder import Recorder, record_run

__all__ = ["Recorder", "Store", "normalize_url", "open_store", "record_run", "upgrade"]
