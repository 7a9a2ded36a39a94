"""scheduler durability: the scheduler lease (SQLite), backfill progress, system alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00

The tables are declared (SQLAlchemy Core) in `monitor.lease`; this migration owns their schema.
System alerts live in their own table, not in `alerts`: they concern a source, not a site, and must
never appear among site alerts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "backfill_progress",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("done_through", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_backfill_progress")),
    )
    op.create_table(
        "system_alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("indicator_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("newest_data", sa.Date(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_alerts")),
    )
    op.create_index("ix_system_alerts_episode", "system_alerts", ["source", "indicator_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_system_alerts_episode", table_name="system_alerts")
    op.drop_table("system_alerts")
    op.drop_table("backfill_progress")
    op.drop_table("scheduler_leases")
