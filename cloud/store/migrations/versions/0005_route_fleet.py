"""routes keep what the fleet planned: vehicle, capacity, reload site, load, service time and planned time per stop,
trips to the site and their loads, start, end, shift end, speed and lateness

Revision ID: 0005_route_fleet
Revises: 0004_anomaly_bundles
Create Date: 2026-11-27 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_route_fleet"
down_revision = "0004_anomaly_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vehicle", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("capacity_l", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reload_site", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("loads", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("service_s", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("service_starts_s", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("reloads", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("trip_loads", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("start_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("end_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shift_end_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("speed_kmh", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("late_s", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("routes", schema=None) as batch_op:
        for column in (
            "late_s",
            "speed_kmh",
            "shift_end_s",
            "end_s",
            "start_s",
            "trip_loads",
            "reloads",
            "service_starts_s",
            "service_s",
            "loads",
            "reload_site",
            "capacity_l",
            "vehicle",
        ):
            batch_op.drop_column(column)
