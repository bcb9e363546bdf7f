"""Keeping the store healthy: crash recovery at start-up, pruning old history, artifacts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound, StoreError
from .database import Db, transaction
from .executions import CRASHED, RUNNING
from .tables import artifacts, executions


def mark_crashed(
    db: Db,
    *,
    reason: str = "the process running it stopped",
    execution_ids: Iterable[str] | None = None,
) -> int:
    """Mark executions left ``running`` as ``crashed``; returns how many.

    Without ``execution_ids``: every running execution. Call it when the service starts,
    before it runs any: running executions are never resumed, because a node may have had
    side effects (an HTTP POST, a database write) that a second run would repeat. (Queued
    executions never started, so the service starts them.) With ``execution_ids``: only those,
    when their worker died. The error names the last node that finished, so that a retry
    can start after it.
    """
    now = time.time()
    query = sa.select(executions.c.id, executions.c.started_at, executions.c.last_node).where(
        executions.c.status == RUNNING
    )
    if execution_ids is not None:
        ids = list(execution_ids)
        if not ids:
            return 0
        query = query.where(executions.c.id.in_(ids))
    with transaction(db) as conn:
        stuck = conn.execute(query).all()
        for row in stuck:
            conn.execute(
                executions.update()
                .where(executions.c.id == row.id, executions.c.status == RUNNING)
                .values(
                    status=CRASHED,
                    finished_at=now,
                    duration_ms=round((now - row.started_at) * 1000, 3),
                    error={
                        "type": "Crashed",
                        "message": f"{reason}; last finished node: {row.last_node or 'none'}",
                        "node": row.last_node,
                    },
                )
            )
    return len(stuck)


def prune(db: Db, *, older_than: float | None = None, keep_last: int | None = None) -> int:
    """Delete finished executions (with their node runs and artifacts); returns how many.

    ``older_than``: seconds; executions that finished longer ago go. ``keep_last``: keep
    that many of the newest executions, delete older finished ones. Given both, each applies
    on its own: an execution goes when it is too old *or* beyond the newest ``keep_last``.
    Running and queued executions stay. Artifact files on disk are not removed.
    """
    if older_than is None and keep_last is None:
        raise StoreError("prune needs older_than and/or keep_last")
    if keep_last is not None and keep_last < 0:
        raise StoreError(f"keep_last must be 0 or more, got {keep_last}")
    conditions: list[sa.ColumnElement[bool]] = []
    with transaction(db) as conn:
        if older_than is not None:
            conditions.append(executions.c.finished_at < time.time() - older_than)
        if keep_last is not None:
            kept = (
                sa.select(executions.c.id)
                .order_by(executions.c.started_at.desc(), executions.c.id.desc())
                .limit(keep_last)
            )
            # Materialised first: MySQL-like limits inside IN are not portable.
            keep_ids = [r.id for r in conn.execute(kept)]
            conditions.append(executions.c.id.not_in(keep_ids))
        deleted = conn.execute(
            executions.delete().where(
                executions.c.status != RUNNING,
                executions.c.finished_at.is_not(None),
                sa.or_(*conditions),
            )
        )
        return deleted.rowcount


def create_artifact(
    db: Db,
    execution_id: str,
    name: str,
    *,
    path: str | Path | None = None,
    data: bytes | None = None,
    node_id: str | None = None,
) -> int:
    """Record a file a run produced (by ``path``, or its bytes in ``data``); returns its id.

    Every call adds a row; :func:`record_artifact` keeps one row per file instead.
    """
    if (path is None) == (data is None):
        raise StoreError(f"artifact {name!r}: give exactly one of path or data")
    try:
        size = len(data) if data is not None else Path(str(path)).stat().st_size
    except OSError as exc:
        raise StoreError(f"artifact {name!r}: cannot read {path}: {exc.strerror}") from exc
    with transaction(db) as conn:
        if (
            conn.execute(sa.select(executions.c.id).where(executions.c.id == execution_id)).first()
            is None
        ):
            raise NotFound(f"execution {execution_id!r} not found")
        result = conn.execute(
            artifacts.insert().values(
                execution_id=execution_id,
                name=name,
                path=None if path is None else str(path),
                data=data,
                size=size,
                created_at=time.time(),
                node_id=node_id,
            )
        )
        key = result.inserted_primary_key
        return int(key[0]) if key is not None else 0


def record_artifact(
    db: Db, execution_id: str, name: str, path: str | Path, *, node_id: str | None = None
) -> int:
    """Record the file at ``path`` (``name``: its name for people) once per execution.

    A file written again in the same execution keeps its one row: ``size`` and ``node_id``
    become the latest write's, ``created_at`` stays the first's. Returns the row's id; raises
    :class:`~conv3n_jupyter.errors.NotFound` when the execution is not in the store and
    :class:`~conv3n_jupyter.errors.StoreError` when the file cannot be read.

        >>> record_artifact(store, "e1", "out/report.json", "/srv/files/out/report.json",
        ...                 node_id="save")  # doctest: +SKIP
        7
    """
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise StoreError(f"artifact {name!r}: cannot read {path}: {exc.strerror}") from exc
    with transaction(db) as conn:
        found = conn.execute(
            sa.select(artifacts.c.id)
            .where(artifacts.c.execution_id == execution_id, artifacts.c.name == name)
            .order_by(artifacts.c.id)
            .limit(1)
        ).first()
        if found is not None:
            conn.execute(
                artifacts.update()
                .where(artifacts.c.id == found.id)
                .values(path=str(path), size=size, node_id=node_id, data=None)
            )
            return int(found.id)
    return create_artifact(db, execution_id, name, path=path, node_id=node_id)


def forget_artifacts(db: Db, execution_id: str, name: str) -> int:
    """Delete an execution's artifact ``name`` and those under the folder ``name``; how many.

    For a file moved away during the run: its old name no longer holds it.
    """
    with transaction(db) as conn:
        deleted = conn.execute(
            artifacts.delete().where(
                artifacts.c.execution_id == execution_id,
                sa.or_(
                    artifacts.c.name == name,
                    artifacts.c.name.startswith(name.rstrip("/") + "/", autoescape=True),
                ),
            )
        )
        return deleted.rowcount


def read_artifact(db: Db, execution_id: str, artifact_id: int) -> dict[str, Any]:
    """One artifact of an execution (without inline ``data``); raises ``NotFound``."""
    with transaction(db) as conn:
        row = conn.execute(
            sa.select(*(c for c in artifacts.c if c.name != "data")).where(
                artifacts.c.execution_id == execution_id, artifacts.c.id == artifact_id
            )
        ).first()
    if row is None:
        raise NotFound(f"artifact {artifact_id} of execution {execution_id!r} not found")
    return row._asdict()


def read_artifacts(db: Db, execution_id: str) -> list[dict[str, Any]]:
    """An execution's artifacts, oldest first (``data`` included when stored inline)."""
    with transaction(db) as conn:
        rows = conn.execute(
            sa.select(artifacts)
            .where(artifacts.c.execution_id == execution_id)
            .order_by(artifacts.c.id)
        )
        return [r._asdict() for r in rows]


def list_artifacts(db: Db, execution_id: str) -> list[dict[str, Any]]:
    """An execution's artifacts, oldest first, without ``data``; raises ``NotFound``.

    Each row: ``id``, ``execution_id``, ``name``, ``path``, ``size``, ``node_id``,
    ``created_at``.

        >>> [a["name"] for a in list_artifacts(store, "e1")]  # doctest: +SKIP
        ['out/report.json']
    """
    with transaction(db) as conn:
        if (
            conn.execute(sa.select(executions.c.id).where(executions.c.id == execution_id)).first()
            is None
        ):
            raise NotFound(f"execution {execution_id!r} not found")
        rows = conn.execute(
            sa.select(*(c for c in artifacts.c if c.name != "data"))
            .where(artifacts.c.execution_id == execution_id)
            .order_by(artifacts.c.id)
        )
        return [r._asdict() for r in rows]
