"""Executions handed to workers: queued status, a definition snapshot, parent and retry links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("definition", sa.JSON, nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("retry_of", sa.String(64), nullable=True))
        batch.add_column(sa.Column("start_from", sa.String(200), nullable=True))
        batch.add_column(sa.Column("timeout", sa.Float, nullable=True))
        batch.add_column(sa.Column("worker", sa.String(100), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.Float, nullable=True))
    op.create_index("ix_executions_parent", "executions", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_executions_parent", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        for column in (
            "queued_at",
            "worker",
            "timeout",
            "start_from",
            "retry_of",
            "parent_id",
            "definition",
        ):
            batch.drop_column(column)
