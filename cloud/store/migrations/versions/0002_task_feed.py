"""task feed: task change events (server-sent events), dispatcher-pinned tasks, route crews, scheduler jobs

Revision ID: 0002_task_feed
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_task_feed"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crew", sa.String(length=100), nullable=True))
    op.create_table(
        "task_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_events_municipality"), ["municipality"], unique=False)
    # APScheduler's SQLAlchemyJobStore table, made here so the schema has one owner (the job store only checks it).
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False)


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("task_events")
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_column("crew")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("pinned")
