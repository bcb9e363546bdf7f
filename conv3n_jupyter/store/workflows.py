"""Saved workflows and their version history: every save is a new version, old ones restorable."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa

from ..errors import AlreadyExists, NotFound
from .database import Db, transaction
from .tables import variables, workflow_versions, workflows


def _name_of(definition: dict[str, Any]) -> str:
    return str(definition.get("name") or "unnamed")


def create_workflow(
    db: Db, definition: dict[str, Any], *, workflow_id: str | None = None
) -> dict[str, Any]:
    """Save a new workflow as version 1 and return it (see :func:`read_workflow`).

    The id is ``workflow_id``, else the definition's ``id``, else a new random one.
    """
    wid = workflow_id or definition.get("id") or uuid.uuid4().hex
    now = time.time()
    with transaction(db) as conn:
        if conn.execute(sa.select(workflows.c.id).where(workflows.c.id == wid)).first():
            raise AlreadyExists(f"workflow {wid!r} already exists")
        conn.execute(
            workflows.insert().values(
                id=wid, name=_name_of(definition), version=1, created_at=now, updated_at=now
            )
        )
        conn.execute(
            workflow_versions.insert().values(
                workflow_id=wid, version=1, definition=definition, created_at=now
            )
        )
    return {
        "id": wid,
        "name": _name_of(definition),
        "version": 1,
        "definition": definition,
        "created_at": now,
        "updated_at": now,
    }


def update_workflow(db: Db, workflow_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Save ``definition`` as the workflow's next version and make it current."""
    now = time.time()
    with transaction(db) as conn:
        row = conn.execute(
            sa.select(workflows.c.version, workflows.c.created_at).where(
                workflows.c.id == workflow_id
            )
        ).first()
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} not found")
        version = row.version + 1
        conn.execute(
            workflow_versions.insert().values(
                workflow_id=workflow_id, version=version, definition=definition, created_at=now
            )
        )
        conn.execute(
            workflows.update()
            .where(workflows.c.id == workflow_id)
            .values(name=_name_of(definition), version=version, updated_at=now)
        )
    return {
        "id": workflow_id,
        "name": _name_of(definition),
        "version": version,
        "definition": definition,
        "created_at": row.created_at,
        "updated_at": now,
    }


def read_workflow(db: Db, workflow_id: str, *, version: int | None = None) -> dict[str, Any]:
    """The workflow with its current definition, or the definition of ``version``.

    Returns ``{"id", "name", "version", "definition", "created_at", "updated_at"}``.
    """
    with transaction(db) as conn:
        head = conn.execute(sa.select(workflows).where(workflows.c.id == workflow_id)).first()
        if head is None:
            raise NotFound(f"workflow {workflow_id!r} not found")
        wanted = head.version if version is None else version
        stored = conn.execute(
            sa.select(workflow_versions.c.definition).where(
                workflow_versions.c.workflow_id == workflow_id,
                workflow_versions.c.version == wanted,
            )
        ).first()
    if stored is None:
        raise NotFound(f"workflow {workflow_id!r} has no version {wanted}")
    return {**head._asdict(), "version": wanted, "definition": stored.definition}


def read_workflows(db: Db) -> list[dict[str, Any]]:
    """Every saved workflow (without definitions), most recently updated first."""
    with transaction(db) as conn:
        rows = conn.execute(sa.select(workflows).order_by(workflows.c.updated_at.desc()))
        return [row._asdict() for row in rows]


def read_workflow_versions(db: Db, workflow_id: str) -> list[dict[str, Any]]:
    """The workflow's versions, oldest first: ``{"version", "name", "created_at"}`` each."""
    with transaction(db) as conn:
        rows = conn.execute(
            sa.select(workflow_versions)
            .where(workflow_versions.c.workflow_id == workflow_id)
            .order_by(workflow_versions.c.version)
        ).all()
    if not rows:
        raise NotFound(f"workflow {workflow_id!r} not found")
    return [
        {"version": r.version, "name": _name_of(r.definition), "created_at": r.created_at}
        for r in rows
    ]


def restore_workflow_version(db: Db, workflow_id: str, version: int) -> dict[str, Any]:
    """Make an old version current again, as a new version (history is never rewritten)."""
    with transaction(db) as conn:
        old = read_workflow(conn, workflow_id, version=version)
        return update_workflow(conn, workflow_id, old["definition"])


def delete_workflow(db: Db, workflow_id: str) -> None:
    """Delete the workflow, its versions and its workflow-scoped variables (not its history)."""
    with transaction(db) as conn:
        conn.execute(
            workflow_versions.delete().where(workflow_versions.c.workflow_id == workflow_id)
        )
        deleted = conn.execute(workflows.delete().where(workflows.c.id == workflow_id))
        if deleted.rowcount == 0:
            raise NotFound(f"workflow {workflow_id!r} not found")
        conn.execute(
            variables.delete().where(
                variables.c.scope == "workflow", variables.c.workflow_id == workflow_id
            )
        )
