"""Artifacts name the node that produced them: ``artifacts.node_id`` (nullable).

Existing rows keep a null ``node_id``. SQLite goes through ``batch_alter_table`` (an added
nullable column needs no table rebuild there); PostgreSQL adds the column in place.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("node_id", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("node_id")
