"""Variables of ``std/set_var``/``std/get_var`` that outlive a run: ``workflow`` and ``global`` scope."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound, StoreError
from .database import Db, transaction
from .tables import variables

SCOPES = ("workflow", "global")


def _owner(scope: str, workflow_id: str | None) -> str:
    if scope not in SCOPES:
        raise StoreError(f"unknown variable scope {scope!r}; known: {', '.join(SCOPES)}")
    if scope == "workflow":
        if not workflow_id:
            raise StoreError("a workflow-scoped variable needs a workflow_id")
        return workflow_id
    return ""


def _where(scope: str, workflow_id: str | None) -> sa.ColumnElement[bool]:
    return sa.and_(
        variables.c.scope == scope, variables.c.workflow_id == _owner(scope, workflow_id)
    )


def set_variable(
    db: Db, key: str, value: Any, *, scope: str = "global", workflow_id: str | None = None
) -> None:
    """Create or replace a variable."""
    where = _where(scope, workflow_id)
    now = time.time()
    with transaction(db) as conn:
        changed = conn.execute(
            variables.update()
            .where(where, variables.c.key == key)
            .values(value=value, updated_at=now)
        )
        if changed.rowcount == 0:
            conn.execute(
                variables.insert().values(
                    scope=scope,
                    workflow_id=_owner(scope, workflow_id),
                    key=key,
                    value=value,
                    updated_at=now,
                )
            )


def read_variable(
    db: Db, key: str, *, scope: str = "global", workflow_id: str | None = None
) -> Any:
    """The variable's value; :class:`NotFound` when it was never set."""
    with transaction(db) as conn:
        row = conn.execute(
            sa.select(variables.c.value).where(_where(scope, workflow_id), variables.c.key == key)
        ).first()
    if row is None:
        where = f"workflow {workflow_id!r}" if scope == "workflow" else "global scope"
        raise NotFound(f"variable {key!r} is not set in {where}")
    return row.value


def read_variables(
    db: Db, *, scope: str = "global", workflow_id: str | None = None
) -> dict[str, Any]:
    """Every variable of a scope as ``{key: value}``."""
    with transaction(db) as conn:
        rows = conn.execute(
            sa.select(variables.c.key, variables.c.value)
            .where(_where(scope, workflow_id))
            .order_by(variables.c.key)
        )
        return {r.key: r.value for r in rows}


def delete_variable(
    db: Db, key: str, *, scope: str = "global", workflow_id: str | None = None
) -> bool:
    """Delete a variable; returns whether it existed."""
    with transaction(db) as conn:
        deleted = conn.execute(
            variables.delete().where(_where(scope, workflow_id), variables.c.key == key)
        )
        return deleted.rowcount > 0
