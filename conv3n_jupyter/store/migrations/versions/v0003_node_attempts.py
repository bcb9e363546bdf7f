"""Node runs per attempt: the key of ``node_runs`` becomes (execution_id, node_id, attempt).

A node with ``retry`` keeps a row for each failed attempt beside the one it ended with.
Existing rows keep their ``attempt`` (the attempts a node made; 0 for pinned and skipped
nodes), unique per node until now, so every row stays as it is. SQLite rebuilds the table
(``batch_alter_table``, rows copied); PostgreSQL swaps the key constraint in place.
The downgrade keeps each node's last attempt only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PK = "node_runs_pkey"  # PostgreSQL's name for the v0001 key


def _node_runs(key: tuple[str, ...]) -> sa.Table:
    """``node_runs`` as of this revision, with ``key`` as its primary key (SQLite's rebuild)."""
    return sa.Table(
        "node_runs",
        sa.MetaData(),
        sa.Column(
            "execution_id",
            sa.String(64),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("node_id", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("port", sa.String(100), nullable=True),
        sa.Column("input", sa.JSON, nullable=True),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("logs", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("started_at", sa.String(40), nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint(*key),
    )


def _set_key(key: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("node_runs", copy_from=_node_runs(key), recreate="always"):
            pass
        return
    op.drop_constraint(_PK, "node_runs", type_="primary")
    op.create_primary_key(_PK, "node_runs", list(key))


def upgrade() -> None:
    _set_key(("execution_id", "node_id", "attempt"))


def downgrade() -> None:
    op.execute(
        "DELETE FROM node_runs WHERE attempt < ("
        "SELECT MAX(n.attempt) FROM node_runs n"
        " WHERE n.execution_id = node_runs.execution_id AND n.node_id = node_runs.node_id)"
    )
    _set_key(("execution_id", "node_id"))
