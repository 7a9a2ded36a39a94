"""Forecast tables and queries: the newest forecast issue of each source and the indicator values it gives.

Forecast values live apart from observed indicator values (`indicator_values`) and are never mixed with
them. Only the newest issue of a source is kept: storing an issue replaces the previous one's values in
the caller's transaction, so readers see either the old issue or the new one. The tables share `Base`
(and so the metadata) of `monitor.store.tables`; migration 0005 creates them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitor.store.repository import Store, bound_column, driver_values, key_order, utcnow
from monitor.store.tables import Base, BigId, UTCDateTime

#: Columns of forecast value records (besides `source` and `issued`, which come with the issue).
RECORD_COLUMNS = (
    "site_id",
    "indicator_id",
    "valid_day",
    "lead_days",
    "period_start",
    "freq",
    "value",
    "level",
    "material",
    "indicator_version",
    "product",
    "product_version",
    "synthetic",
)


class ForecastIssueRow(Base):
    """The forecast issue of a source whose values are stored: when it was issued and what it covers."""

    __tablename__ = "forecast_issues"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    issued: Mapped[datetime] = mapped_column(UTCDateTime)
    observed_until: Mapped[date] = mapped_column(Date)  # newest observed day when it was stored
    first_day: Mapped[date | None] = mapped_column(Date)  # first and last valid day kept
    last_day: Mapped[date | None] = mapped_column(Date)
    product: Mapped[str] = mapped_column(String(200))
    product_version: Mapped[str] = mapped_column(String(60))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    attribution: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ForecastValueRow(Base):
    """One forecast indicator value at one site for one valid day, with its lead, level and provenance.

    For a daily indicator the period is the valid day; for a count of days in a month or year it is that
    period, counted to the valid day (observed days plus forecast days).
    """

    __tablename__ = "forecast_values"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    indicator_id: Mapped[str] = mapped_column(String(80))
    issued: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_day: Mapped[date] = mapped_column(Date)
    lead_days: Mapped[int] = mapped_column(SmallInteger)
    period_start: Mapped[date] = mapped_column(Date)
    freq: Mapped[str] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int] = mapped_column(SmallInteger)
    material: Mapped[str | None] = mapped_column(String(40))
    indicator_version: Mapped[str] = mapped_column(String(20))
    product: Mapped[str] = mapped_column(String(200))
    product_version: Mapped[str] = mapped_column(String(60))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("source", "site_id", "indicator_id", "valid_day", name="uq_forecast_values_key"),
        Index("ix_forecast_values_site_indicator", "site_id", "indicator_id"),
    )


@dataclass(frozen=True)
class ForecastIssue:
    """What is known of one stored forecast issue, detached from the session."""

    source: str
    issued: datetime
    observed_until: date
    first_day: date | None
    last_day: date | None
    product: str
    product_version: str
    synthetic: bool
    attribution: str


def stored_issue(session: Session, source: str) -> ForecastIssue | None:
    """The forecast issue of `source` whose values are stored, if any."""
    row = session.get(ForecastIssueRow, source)
    if row is None:
        return None
    return ForecastIssue(
        row.source,
        row.issued,
        row.observed_until,
        row.first_day,
        row.last_day,
        row.product,
        row.product_version,
        row.synthetic,
        row.attribution,
    )


def _bulk_insert(session: Session, columns: dict[str, list]) -> None:
    """Insert forecast value rows given column-wise: COPY on PostgreSQL (psycopg), else executemany of
    tuples through the driver, each column converted by its SQLAlchemy type once per distinct value."""
    table = ForecastValueRow.__table__
    names = list(columns)
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = conn.connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*columns.values(), strict=True):
                copy.write_row(row)
        return
    converted = [bound_column(columns[n], table.c[n], dialect) for n in names]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    rows = zip(*converted, strict=True)
    while batch := list(itertools.islice(rows, _BATCH)):  # tuples made a batch at a time
        conn.exec_driver_sql(sql, batch)


#: Rows per executemany.
_BATCH = 20_000


def replace_forecast(session: Session, issue: ForecastIssue, records: pd.DataFrame) -> int:
    """Store one issue of a source in place of the previous one (in the caller's transaction); returns the
    number of values written. `records` has the columns `RECORD_COLUMNS`."""
    t = ForecastValueRow
    sqlite = session.get_bind().dialect.name == "sqlite"
    if records.empty or not sqlite:
        session.execute(delete(t).where(t.source == issue.source))
    session.execute(delete(ForecastIssueRow).where(ForecastIssueRow.source == issue.source))
    session.add(
        ForecastIssueRow(
            source=issue.source,
            issued=issue.issued,
            observed_until=issue.observed_until,
            first_day=issue.first_day,
            last_day=issue.last_day,
            product=issue.product,
            product_version=issue.product_version,
            synthetic=issue.synthetic,
            attribution=issue.attribution,
            stored_at=utcnow(),
        )
    )
    if records.empty:
        return 0
    n = len(records)
    records = records.iloc[key_order(records, ("site_id", "indicator_id", "valid_day"))]
    columns = {"source": [issue.source] * n, "issued": [issue.issued] * n}
    columns |= {c: driver_values(records[c]) for c in RECORD_COLUMNS}
    if not sqlite:
        _bulk_insert(session, columns)
        return n
    # On SQLite, by ranges of sites: the previous issue's rows of the range deleted, then the new ones
    # inserted, while the pages both touch are still in the page cache. Deleting every row first, at
    # 100,000 sites, spilled the pages the delete dirtied, and the insert wrote them again (the forecast
    # step's bytes grew x13 for x10 sites). The ranges tile every site id in SQLite's (binary) order,
    # which is the order of `key_order`.
    for first, stop in _site_ranges(records["site_id"].to_numpy()):
        in_range = [t.source == issue.source]
        if first > 0:
            in_range.append(t.site_id >= columns["site_id"][first])
        if stop < n:
            in_range.append(t.site_id < columns["site_id"][stop])
        session.execute(delete(t).where(*in_range))
        _bulk_insert(session, {c: values[first:stop] for c, values in columns.items()})
    return n


def _site_ranges(site_ids: np.ndarray, size: int | None = None) -> list[tuple[int, int]]:
    """[first, stop) row ranges of about `size` rows (default `_BATCH`) over rows ordered by site, each
    holding whole sites."""
    size = size or _BATCH
    n = len(site_ids)
    starts = np.flatnonzero(np.r_[True, site_ids[1:] != site_ids[:-1]])  # each site's first row
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, np.arange(size, n, size)), len(starts) - 1)])
    bounds = [0, *(int(c) for c in cuts if 0 < c < n), n]
    return list(itertools.pairwise(bounds))


def forecast_values(
    store: Store, site_id: str, indicator_id: str
) -> tuple[list[ForecastValueRow], dict[str, ForecastIssue]]:
    """The stored forecast values of one indicator at one site by valid day, and the issues they are from."""
    with store.session() as s:
        rows = list(
            s.scalars(
                select(ForecastValueRow)
                .where(ForecastValueRow.site_id == site_id, ForecastValueRow.indicator_id == indicator_id)
                .order_by(ForecastValueRow.valid_day, ForecastValueRow.source)
            )
        )
        issues = {src: stored_issue(s, src) for src in {r.source for r in rows}}
    return rows, {k: v for k, v in issues.items() if v is not None}
