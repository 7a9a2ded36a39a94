"""forecast series: one row per (site, indicator, source) holding the issue's valid days

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00

`forecast_values` (one row per valid day) becomes `forecast_series` (one row per series, its points as
columnar JSON), declared in `monitor.store.forecasts`. The stored issue's values are carried over, so the
issue is not taken again. A downgrade restores `forecast_values` with the same values.
"""

import itertools
import json
from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SERIES = ("source", "site_id", "indicator_id", "issued", "freq", "indicator_version", "product")
SERIES_REST = ("product_version", "synthetic")
POINTS = ("valid_day", "lead_days", "period_start", "value", "level", "material")
#: Types the copy must read and write values with (SQLite keeps dates and timestamps as text).
TYPES = {
    "issued": sa.DateTime(timezone=True),
    "valid_day": sa.Date(),
    "period_start": sa.Date(),
    "synthetic": sa.Boolean(),
}


def _columns(*names: str) -> list:
    return [sa.column(c, TYPES.get(c)) for c in names]


def _iso(value) -> str:
    return value.isoformat()


def upgrade() -> None:
    series = op.create_table(
        "forecast_series",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.String(length=100), nullable=False),
        sa.Column("indicator_id", sa.String(length=80), nullable=False),
        sa.Column("issued", sa.DateTime(timezone=True), nullable=False),
        sa.Column("freq", sa.String(length=8), nullable=False),
        sa.Column("indicator_version", sa.String(length=20), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("product_version", sa.String(length=60), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("points", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_forecast_series_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_series")),
        sa.UniqueConstraint("site_id", "indicator_id", "source", name="uq_forecast_series_key"),
    )
    conn = op.get_bind()
    old = sa.table("forecast_values", *_columns(*SERIES, *SERIES_REST, *POINTS))
    rows = conn.execute(
        sa.select(old).order_by(old.c.source, old.c.site_id, old.c.indicator_id, old.c.valid_day)
    )
    batch = []
    for _, group in itertools.groupby(rows, key=lambda r: (r.source, r.site_id, r.indicator_id)):
        group = list(group)
        first = group[0]
        points = {c: [getattr(r, c) for r in group] for c in POINTS}
        for c in ("valid_day", "period_start"):
            points[c] = [_iso(d) for d in points[c]]
        row = {c: getattr(first, c) for c in (*SERIES, *SERIES_REST)}
        row["points"] = json.dumps(points, separators=(",", ":"))
        batch.append(row)
        if len(batch) >= 10_000:
            op.bulk_insert(series, batch)
            batch = []
    if batch:
        op.bulk_insert(series, batch)
    op.drop_index("ix_forecast_values_site_indicator", table_name="forecast_values")
    op.drop_table("forecast_values")


def downgrade() -> None:
    table = op.create_table(
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
    conn = op.get_bind()
    old = sa.table("forecast_series", *_columns(*SERIES, *SERIES_REST, "points"))
    batch = []
    for row in conn.execute(sa.select(old)):
        points = json.loads(row.points)
        head = {c: getattr(row, c) for c in (*SERIES, *SERIES_REST)}
        for one in zip(*(points[c] for c in POINTS), strict=True):
            point = dict(zip(POINTS, one, strict=True))
            for c in ("valid_day", "period_start"):
                point[c] = date.fromisoformat(point[c])
            batch.append(head | point)
        if len(batch) >= 10_000:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)
    op.drop_table("forecast_series")
