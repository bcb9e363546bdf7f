"""The store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are UTC seconds since the epoch (``Float``): one representation on every database,
cheap to compare for ``since`` filters and pruning. JSON columns hold the engine's dicts as
they are (large values truncated first, see :func:`conv3n_jupyter.store.database.limit_json`).

The migration ``v0001_initial`` creates the same tables; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # the current version
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

workflow_versions = sa.Table(
    "workflow_versions",
    metadata,
    sa.Column(
        "workflow_id",
        sa.String(200),
        sa.ForeignKey("workflows.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# No foreign key to workflows: history outlives a deleted workflow, and a run of a workflow
# file that was never saved in the store (``workflow_id`` null) is recorded too.
executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("workflow_id", sa.String(200), nullable=True),
    sa.Column("workflow_version", sa.Integer, nullable=True),
    sa.Column("workflow_name", sa.String(500), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.JSON, nullable=True),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("last_node", sa.String(200), nullable=True),  # the last node that finished
    # v0002: what a worker needs to run a queued execution, and the links between executions.
    sa.Column("definition", sa.JSON, nullable=True),  # snapshot of a workflow not saved
    sa.Column("parent_id", sa.String(64), nullable=True),  # the run that called std/subworkflow
    sa.Column("retry_of", sa.String(64), nullable=True),  # the execution this one retries
    sa.Column("start_from", sa.String(200), nullable=True),  # a retry re-runs from this node
    sa.Column("timeout", sa.Float, nullable=True),  # seconds; null: the service's default
    sa.Column("worker", sa.String(100), nullable=True),  # the worker process that ran it
    sa.Column("queued_at", sa.Float, nullable=True),
    sa.Index("ix_executions_workflow_started", "workflow_id", "started_at"),
    sa.Index("ix_executions_status_started", "status", "started_at"),
    sa.Index("ix_executions_started", "started_at"),
    sa.Index("ix_executions_parent", "parent_id"),
)

node_runs = sa.Table(
    "node_runs",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(64),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("node_id", sa.String(200), primary_key=True),
    # v0003: one row per attempt, numbered from 1; a node's last row is the one it ended
    # with (0: pinned, skipped, or failed before its first attempt).
    sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("port", sa.String(100), nullable=True),
    sa.Column("input", sa.JSON, nullable=True),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("logs", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("started_at", sa.String(40), nullable=True),  # the engine's ISO 8601 string
    sa.Column("duration_ms", sa.Float, nullable=True),
)

# Global variables use workflow_id "" so that (scope, workflow_id, key) can be the key.
variables = sa.Table(
    "variables",
    metadata,
    sa.Column("scope", sa.String(20), primary_key=True),
    sa.Column("workflow_id", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "execution_id",
        sa.String(64),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("path", sa.String(2000), nullable=True),
    sa.Column("data", sa.LargeBinary, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # v0004: the node that wrote the file (null: recorded by other means, or before v0004).
    sa.Column("node_id", sa.String(200), nullable=True),
)
