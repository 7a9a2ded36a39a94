"""projections: climate-projection indicator values per site, model, scenario and period

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00

The table is declared in `monitor.store.projections`. Projected values live apart from observed and
forecast values and never enter `indicator_values`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projection_values",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=100), nullable=False),
        sa.Column("indicator_id", sa.String(length=80), nullable=False),
        sa.Column("dataset", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("scenario", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.SmallInteger(), nullable=False),
        sa.Column("period_end", sa.SmallInteger(), nullable=False),
        sa.Column("statistic", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("material", sa.String(length=40), nullable=True),
        sa.Column("units", sa.String(length=40), nullable=False),
        sa.Column("bias_method", sa.String(length=80), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("attribution", sa.Text(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_projection_values_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_values")),
        sa.UniqueConstraint(
            "site_id",
            "indicator_id",
            "dataset",
            "model",
            "scenario",
            "period_start",
            "period_end",
            "statistic",
            name="uq_projection_values_key",
        ),
    )
    op.create_index("ix_projection_values_site_indicator", "projection_values", ["site_id", "indicator_id"])


def downgrade() -> None:
    op.drop_index("ix_projection_values_site_indicator", table_name="projection_values")
    op.drop_table("projection_values")
