"""initial schema: inventory, gateways, latest state, tasks, routes, accounts, audit

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 20:36:00.460207
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The six towns of the Zweckverband, seeded as tenants: (URL slug, name as the contracts spell it).
MUNICIPALITIES = (
    ("waechtersbach", "Wächtersbach"),
    ("bad-orb", "Bad Orb"),
    ("bad-soden-salmuenster", "Bad Soden-Salmünster"),
    ("birstein", "Birstein"),
    ("sinntal", "Sinntal"),
    ("steinau-an-der-strasse", "Steinau an der Straße"),
)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_keys_key_sha256")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_municipality"), ["municipality"], unique=False)

    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=False),
        sa.Column("village", sa.String(length=64), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("capacity_l", sa.Integer(), nullable=True),
        sa.Column("waste_type", sa.String(length=32), nullable=True),
        sa.Column("sensor_to_bottom_m", sa.Float(), nullable=True),
        sa.Column("sensor_to_full_m", sa.Float(), nullable=True),
        sa.Column("species", sa.String(length=64), nullable=True),
        sa.Column("planting_year", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assets_municipality"), ["municipality"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_municipality"), ["municipality"], unique=False)

    op.create_table(
        "depots",
        sa.Column("municipality", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("municipality", "name", name=op.f("pk_depots")),
    )
    op.create_table(
        "device_models",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_models")),
    )
    op.create_table(
        "devices",
        sa.Column("dev_eui", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("report_interval_s", sa.Integer(), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("activation", sa.String(length=8), nullable=True),
        sa.Column("join_eui", sa.String(length=16), nullable=True),
        sa.Column("dev_addr", sa.String(length=8), nullable=True),
        sa.Column("app_key_enc", sa.Text(), nullable=True),
        sa.Column("nwk_s_key_enc", sa.Text(), nullable=True),
        sa.Column("app_s_key_enc", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("dev_eui", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_asset"), ["asset"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_municipality"), ["municipality"], unique=False)

    op.create_table(
        "gateways",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("token_source", sa.String(length=16), nullable=True),
        sa.Column("acked_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.JSON(), nullable=True),
        sa.Column("status_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateways")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_gateways_token_sha256")),
    )
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateways_municipality"), ["municipality"], unique=False)

    op.create_table(
        "latest_state",
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "quantity", name=op.f("pk_latest_state")),
    )
    with op.batch_alter_table("latest_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_latest_state_time"), ["time"], unique=False)

    op.create_table(
        "municipalities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_municipalities")),
        sa.UniqueConstraint("name", name=op.f("uq_municipalities_name")),
    )
    op.create_table(
        "routes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stops", sa.JSON(), nullable=False),
        sa.Column("km", sa.Float(), nullable=False),
        sa.Column("polyline", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routes")),
    )
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routes_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_routes_municipality"), ["municipality"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=False),
        sa.Column("due_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.Column("route_id", sa.String(length=64), nullable=True),
        sa.Column("crew", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_asset"), ["asset"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_municipality"), ["municipality"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_state"), ["state"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_municipality"), ["municipality"], unique=False)

    op.create_table(
        "session_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_session_tokens")),
    )
    with op.batch_alter_table("session_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_tokens_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_tokens_user_id"), ["user_id"], unique=False)
    municipalities = sa.table("municipalities", sa.column("id", sa.String), sa.column("name", sa.String))
    op.bulk_insert(municipalities, [{"id": slug, "name": name} for slug, name in MUNICIPALITIES])


def downgrade() -> None:
    with op.batch_alter_table("session_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_session_tokens_expires_at"))

    op.drop_table("session_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_municipality"))

    op.drop_table("users")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_state"))
        batch_op.drop_index(batch_op.f("ix_tasks_municipality"))
        batch_op.drop_index(batch_op.f("ix_tasks_day"))
        batch_op.drop_index(batch_op.f("ix_tasks_asset"))

    op.drop_table("tasks")
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routes_municipality"))
        batch_op.drop_index(batch_op.f("ix_routes_day"))

    op.drop_table("routes")
    op.drop_table("municipalities")
    with op.batch_alter_table("latest_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_latest_state_time"))

    op.drop_table("latest_state")
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateways_municipality"))

    op.drop_table("gateways")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_municipality"))
        batch_op.drop_index(batch_op.f("ix_devices_asset"))

    op.drop_table("devices")
    op.drop_table("device_models")
    op.drop_table("depots")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_municipality"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_municipality"))

    op.drop_table("assets")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_municipality"))

    op.drop_table("api_keys")
