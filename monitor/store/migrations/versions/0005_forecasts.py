"""forecasts: the newest forecast issue of each source and its indicator values

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00

The tables are declared in `monitor.store.forecasts`. Forecast values live apart from observed indicator
values: they are replaced by every new issue and never enter `indicator_values`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forecast_issues",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("issued", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_until", sa.Date(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("product_version", sa.String(length=60), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("attribution", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_forecast_issues")),
    )
    op.create_table(
        "forecast_values",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.String(length=100), nullable=False),
        sa.Column("indicator_id", sa.String(length=80), nullable=False),
        sa.Column("issued", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_day", sa.Date(), nullable=False),
        sa.Column("lead_days", sa.SmallInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("freq", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("material", sa.String(length=40), nullable=True),
        sa.Column("indicator_version", sa.String(length=20), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("product_version", sa.String(length=60), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_forecast_values_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_values")),
        sa.UniqueConstraint("source", "site_id", "indicator_id", "valid_day", name="uq_forecast_values_key"),
    )
    op.create_index("ix_forecast_values_site_indicator", "forecast_values", ["site_id", "indicator_id"])


def downgrade() -> None:
    op.drop_index("ix_forecast_values_site_indicator", table_name="forecast_values")
    op.drop_table("forecast_values")
    op.drop_table("forecast_issues")
