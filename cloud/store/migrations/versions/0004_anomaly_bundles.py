"""anomaly model bundles (archive, version, sha256) and which version a town's gateways or one gateway runs

Revision ID: 0004_anomaly_bundles
Revises: 0003_alerts
Create Date: 2026-11-26 23:27:12.707831
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_anomaly_bundles"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anomaly_bundles",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("families", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archive", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_anomaly_bundles")),
    )
    with op.batch_alter_table("anomaly_bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_anomaly_bundles_municipality"), ["municipality"], unique=False)

    op.create_table(
        "anomaly_assignments",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("assigned_by", sa.String(length=100), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"], ["anomaly_bundles.version"], name=op.f("fk_anomaly_assignments_version_anomaly_bundles")
        ),
        sa.PrimaryKeyConstraint("kind", "target", name=op.f("pk_anomaly_assignments")),
    )
    with op.batch_alter_table("anomaly_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_anomaly_assignments_municipality"), ["municipality"], unique=False)
        batch_op.create_index(batch_op.f("ix_anomaly_assignments_version"), ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("anomaly_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomaly_assignments_version"))
        batch_op.drop_index(batch_op.f("ix_anomaly_assignments_municipality"))

    op.drop_table("anomaly_assignments")
    with op.batch_alter_table("anomaly_bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomaly_bundles_municipality"))

    op.drop_table("anomaly_bundles")
