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
    that many of the newest executions, delete older finished ones. Running executions stay.
    Artifact files on disk are not removed.
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
                *conditions,
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
) -> int:
    """Record a file a run produced (by ``path``, or its bytes in ``data``); returns its id."""
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
            )
        )
        key = result.inserted_primary_key
        return int(key[0]) if key is not None else 0


def read_artifacts(db: Db, execution_id: str) -> list[dict[str, Any]]:
    """An execution's artifacts, oldest first (``data`` included when stored inline)."""
    with transaction(db) as conn:
        rows = conn.execute(
            sa.select(artifacts)
            .where(artifacts.c.execution_id == execution_id)
            .order_by(artifacts.c.id)
        )
        return [r._asdict() for r in rows]
