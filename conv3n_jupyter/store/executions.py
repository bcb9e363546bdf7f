"""Executions and their node runs: written before a run starts and as its nodes finish."""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidCursor, NotFound, StoreError
from ..types import ExecutionStatus
from .database import DEFAULT_MAX_OUTPUT_BYTES, Db, json_text, limit_json, store_of, transaction
from .tables import executions, node_runs

QUEUED = ExecutionStatus.QUEUED.value
RUNNING = ExecutionStatus.RUNNING.value
CRASHED = ExecutionStatus.CRASHED.value
"""Status of an execution whose process stopped while it ran (see ``maintenance.mark_crashed``)."""

_UPDATABLE = frozenset(
    {
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "error",
        "output",
        "last_node",
        "trigger",
        "params",
        "worker",
    }
)
_NODE_FIELDS = (
    "attempt",
    "status",
    "port",
    "input",
    "output",
    "logs",
    "error",
    "started_at",
    "duration_ms",
)


def _limit(conn: sa.Connection, max_output_bytes: int | None) -> int:
    if max_output_bytes is not None:
        return max_output_bytes
    store = store_of(conn)
    return store.max_output_bytes if store is not None else DEFAULT_MAX_OUTPUT_BYTES


_INSERT = executions.insert()
_CLAIM = (
    executions.update()
    .where(executions.c.id == sa.bindparam("eid"), executions.c.status == QUEUED)
    .values(status=RUNNING, started_at=sa.bindparam("now"), worker=sa.bindparam("worker"))
    .returning(*executions.c)
)


def execution_row(
    *,
    workflow_name: str,
    execution_id: str | None = None,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    status: str = RUNNING,
    trigger: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    started_at: float | None = None,
    definition: Mapping[str, Any] | None = None,
    parent_id: str | None = None,
    retry_of: str | None = None,
    start_from: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The ``executions`` row :func:`create_execution` writes (for :func:`insert_executions`)."""
    now = time.time() if started_at is None else started_at
    return {
        "id": execution_id or uuid.uuid4().hex,
        "workflow_id": workflow_id,
        "workflow_version": workflow_version,
        "workflow_name": workflow_name,
        "status": status,
        "trigger": dict(trigger or {}),
        "params": dict(params or {}),
        "started_at": now,
        "queued_at": now if status == QUEUED else None,
        "definition": dict(definition) if definition is not None else None,
        "parent_id": parent_id,
        "retry_of": retry_of,
        "start_from": start_from,
        "timeout": timeout,
    }


def create_execution(db: Db, **fields: Any) -> str:
    """Record an execution (before it runs) and return its id.

    Keywords are those of :func:`execution_row`: ``workflow_name`` (required),
    ``execution_id``, ``workflow_id``/``workflow_version`` (null for a workflow that is not
    saved in the store; such a run keeps its ``definition``, which a worker runs), ``status``
    (``"queued"`` for an execution handed to a worker pool: :func:`claim_execution` starts
    it), ``trigger``, ``params``, ``started_at``, ``parent_id`` (a sub-workflow run's caller),
    ``retry_of``/``start_from`` (a retry and where it starts), ``timeout``.
    """
    return insert_executions(db, [execution_row(**fields)])[0]


def insert_executions(db: Db, rows: list[dict[str, Any]]) -> list[str]:
    """Write execution rows (from :func:`execution_row`) in one transaction; their ids."""
    with transaction(db) as conn:
        # A statement built once with bound parameters: building one with literal values
        # costs four times the database's own work for a row this small.
        conn.execute(_INSERT, rows)
    return [row["id"] for row in rows]


def claim_execution(db: Db, execution_id: str, *, worker: str) -> dict[str, Any] | None:
    """Move a ``queued`` execution to ``running`` for ``worker``; the row, or ``None``.

    ``None`` means another worker took it or it was cancelled before it started: the caller
    must not run it. The row includes ``definition`` (or the saved workflow's, by version).
    """
    now = time.time()
    with transaction(db) as conn:
        # One statement: the row changes and comes back together (SQLite 3.35+, PostgreSQL).
        row = conn.execute(_CLAIM, {"eid": execution_id, "now": now, "worker": worker}).first()
        if row is None:
            return None
        out = row._asdict()
        if out["definition"] is None and out["workflow_id"] is not None:
            from .tables import workflow_versions

            version = conn.execute(
                sa.select(workflow_versions.c.definition).where(
                    workflow_versions.c.workflow_id == out["workflow_id"],
                    workflow_versions.c.version == out["workflow_version"],
                )
            ).scalar()
            out["definition"] = version
    return out


def claim_executions(
    db: Db, execution_ids: list[str], *, worker: str
) -> list[dict[str, Any] | None]:
    """:func:`claim_execution` for several executions in one transaction, results in order."""
    with transaction(db) as conn:
        return [claim_execution(conn, eid, worker=worker) for eid in execution_ids]


def cancel_queued(db: Db, execution_id: str, *, reason: str = "cancelled by request") -> bool:
    """Cancel an execution that no worker has started; ``False`` if it is not queued."""
    now = time.time()
    with transaction(db) as conn:
        changed = conn.execute(
            executions.update()
            .where(executions.c.id == execution_id, executions.c.status == QUEUED)
            .values(
                status="cancelled",
                finished_at=now,
                duration_ms=0.0,
                error={"type": "Cancelled", "message": reason, "node": None},
            )
        )
        return bool(changed.rowcount)


def read_queued(db: Db) -> list[str]:
    """Ids of the executions waiting for a worker, oldest first."""
    with transaction(db) as conn:
        return list(
            conn.execute(
                sa.select(executions.c.id)
                .where(executions.c.status == QUEUED)
                .order_by(executions.c.queued_at, executions.c.id)
            ).scalars()
        )


def previous_results(db: Db, execution_id: str) -> dict[str, Any]:
    """An execution's stored node runs as the engine's ``previous`` (for a retry).

    Each node's last attempt counts (:func:`read_execution`'s ``nodes``). Only successful
    nodes are reusable; a node whose output was truncated in the store cannot
    be reused, and is left out (the retry runs it again if it is needed).
    """
    stored = read_execution(db, execution_id)
    nodes: dict[str, Any] = {}
    for nid, run in stored["nodes"].items():
        output = run.get("output")
        if run.get("status") != "success":
            continue
        if isinstance(output, dict) and output.get("truncated") is True and "preview" in output:
            continue
        nodes[nid] = {
            "status": "success",
            "port": run.get("port") or "default",
            "data": output,
            "attempts": run.get("attempt"),
            "duration_ms": run.get("duration_ms"),
            "started_at": run.get("started_at"),
        }
    return {"execution_id": execution_id, "nodes": nodes}


def update_execution(
    db: Db, execution_id: str, *, max_output_bytes: int | None = None, **fields: Any
) -> None:
    """Change some of an execution's fields (``status``, ``finished_at``, ``output``...)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise StoreError(
            f"cannot update execution field(s) {sorted(unknown)}; updatable: {sorted(_UPDATABLE)}"
        )
    with transaction(db) as conn:
        if "output" in fields:
            fields["output"] = limit_json(fields["output"], _limit(conn, max_output_bytes))
        changed = conn.execute(
            executions.update().where(executions.c.id == execution_id).values(**fields)
        )
        if changed.rowcount == 0:
            raise NotFound(f"execution {execution_id!r} not found")


def upsert_node_runs(
    db: Db,
    execution_id: str,
    runs: Iterable[Mapping[str, Any]],
    *,
    max_output_bytes: int | None = None,
) -> int:
    """Insert or replace node runs, all in one statement; returns the count.

    A row is one attempt of one node: ``(node_id, attempt)`` is its key, so a row for the
    same attempt replaces the earlier one and another attempt adds a row. Each run has
    ``node_id`` and any of ``attempt`` (default 1), ``status``, ``port``, ``input``,
    ``output``, ``logs``, ``error``, ``started_at`` (ISO 8601), ``duration_ms``. Input and
    output above the byte limit are stored truncated.

        >>> upsert_node_runs(store, eid, [
        ...     {"node_id": "call", "attempt": 1, "status": "error", "error": {"message": "503"}},
        ...     {"node_id": "call", "attempt": 2, "status": "success", "output": {"ok": True}},
        ... ])
        2
    """
    with transaction(db) as conn:
        limit = _limit(conn, max_output_bytes)
        rows = [
            (
                execution_id,
                run["node_id"],
                run.get("attempt", 1),
                run.get("status", RUNNING),
                run.get("port"),
                json_text(run.get("input"), limit),
                json_text(run.get("output"), limit),
                json_text(run.get("logs"), limit),
                json_text(run.get("error"), limit),
                run.get("started_at"),
                run.get("duration_ms"),
            )
            for run in runs
        ]
        if rows:
            # Below SQLAlchemy's statement layer on purpose: a 200-row batch costs ~0.5 ms
            # here against ~4 ms through Core (JSON bind processors, insertmanyvalues).
            conn.exec_driver_sql(_upsert_sql(conn.dialect.name), rows)
        return len(rows)


_COLUMNS = ("execution_id", "node_id", *_NODE_FIELDS)
_JSON_COLUMNS = frozenset({"input", "output", "logs", "error"})


@functools.cache
def _upsert_sql(dialect: str) -> str:
    if dialect == "sqlite":
        marks = ["?"] * len(_COLUMNS)
    else:  # psycopg's format style; its text parameters need a cast to json
        marks = ["%s::json" if c in _JSON_COLUMNS else "%s" for c in _COLUMNS]
    updates = ", ".join(f"{c} = excluded.{c}" for c in _NODE_FIELDS if c != "attempt")
    return (
        f"INSERT INTO node_runs ({', '.join(_COLUMNS)}) VALUES ({', '.join(marks)}) "
        f"ON CONFLICT (execution_id, node_id, attempt) DO UPDATE SET {updates}"
    )


def read_execution(db: Db, execution_id: str) -> dict[str, Any]:
    """The execution with ``nodes``: each node's last attempt as ``{node_id: {...}}``.

    A node that was retried also has ``earlier_attempts``: the rows of its failed attempts,
    oldest first, with the same fields (the key is absent when there was one attempt). The
    last row's ``started_at``/``duration_ms`` are the node's as a whole (retries included);
    an earlier attempt's are that attempt's own.

        >>> run = read_execution(store, eid)["nodes"]["call"]
        >>> run["attempt"], [a["error"]["message"] for a in run["earlier_attempts"]]
        (3, ['HTTP 503', 'HTTP 503'])

    ``definition`` (the snapshot of an unsaved workflow) is left out: read it with
    :func:`claim_execution`'s row or the ``workflows`` functions.
    """
    with transaction(db) as conn:
        row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).first()
        if row is None:
            raise NotFound(f"execution {execution_id!r} not found")
        runs = conn.execute(
            sa.select(*_RUN_COLUMNS)
            .where(node_runs.c.execution_id == execution_id)
            .order_by(node_runs.c.node_id, node_runs.c.attempt)
        ).all()
    out = row._asdict()
    out.pop("definition", None)
    nodes: dict[str, dict[str, Any]] = {}
    for run in runs:  # attempts in order: a later one becomes the node's row
        current = run._asdict()
        before = nodes.get(run.node_id)
        if before is not None:
            earlier = before.pop("earlier_attempts", [])
            earlier.append(before)
            current["earlier_attempts"] = earlier
        nodes[run.node_id] = current
    out["nodes"] = nodes
    return out


_RUN_COLUMNS = [c for c in node_runs.c if c.name != "execution_id"]


_LISTED = [c for c in executions.c if c.name != "definition"]


def read_definition(db: Db, execution_id: str) -> dict[str, Any] | None:
    """The workflow an execution ran: its own snapshot, else its saved workflow's version.

    ``None`` when neither is kept (a run recorded by ``conv3n run --store`` of a file).
    """
    from .tables import workflow_versions

    with transaction(db) as conn:
        row = conn.execute(
            sa.select(
                executions.c.definition, executions.c.workflow_id, executions.c.workflow_version
            ).where(executions.c.id == execution_id)
        ).first()
        if row is None:
            raise NotFound(f"execution {execution_id!r} not found")
        if row.definition is not None:
            return dict(row.definition)
        if row.workflow_id is None:
            return None
        saved = conn.execute(
            sa.select(workflow_versions.c.definition).where(
                workflow_versions.c.workflow_id == row.workflow_id,
                workflow_versions.c.version == row.workflow_version,
            )
        ).scalar()
    return dict(saved) if isinstance(saved, dict) else None


@dataclass
class Page:
    """One page of executions; pass ``next_cursor`` back to get the next (``None``: last page)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def _encode_cursor(started_at: float, eid: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([started_at, eid]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        started_at, eid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(started_at), str(eid)
    except Exception as exc:  # binascii, JSON, unpacking, types: all mean "not ours"
        raise InvalidCursor(
            f"invalid cursor {cursor!r}: pass back a next_cursor unchanged"
        ) from exc


def read_executions(
    db: Db,
    *,
    workflow_id: str | None = None,
    status: str | None = None,
    since: float | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Executions (without node runs), newest first, filtered and paginated by cursor.

    ``since`` is a UNIX time: only executions started at or after it.
    """
    if limit < 1:
        raise StoreError(f"limit must be at least 1, got {limit}")
    query = sa.select(*_LISTED)
    if workflow_id is not None:
        query = query.where(executions.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(executions.c.status == status)
    if since is not None:
        query = query.where(executions.c.started_at >= since)
    if cursor is not None:
        at, eid = _decode_cursor(cursor)
        query = query.where(
            sa.or_(
                executions.c.started_at < at,
                sa.and_(executions.c.started_at == at, executions.c.id < eid),
            )
        )
    query = query.order_by(executions.c.started_at.desc(), executions.c.id.desc()).limit(limit + 1)
    with transaction(db) as conn:
        rows = [r._asdict() for r in conn.execute(query)]
    page = Page(rows[:limit])
    if len(rows) > limit:
        last = rows[limit - 1]
        page.next_cursor = _encode_cursor(last["started_at"], last["id"])
    return page
