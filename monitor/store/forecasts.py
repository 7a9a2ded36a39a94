"""Forecast tables and queries: the newest forecast issue of each source and the indicator values it gives.

Forecast values live apart from observed indicator values (`indicator_values`) and are never mixed with
them. Only the newest issue of a source is kept: storing an issue replaces the previous one's values in
the caller's transaction, so readers see either the old issue or the new one. The tables share `Base`
(and so the metadata) of `monitor.store.tables`; migrations 0005 and 0007 create them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
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


class ForecastSeriesRow(Base):
    """The forecast values of one indicator at one site from one source's newest issue, one row for all its
    valid days: `points` holds them column-wise as JSON (valid_day, lead_days, period_start, value,
    level, material; see `ForecastValue`).

    One row per series rather than per valid day: a GloFAS issue gives 30 valid days, and storing them as
    rows made the forecast step a third of a daily pass (every row in three B-trees, deleted and inserted
    again by the next issue).
    """

    __tablename__ = "forecast_series"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    indicator_id: Mapped[str] = mapped_column(String(80))
    issued: Mapped[datetime] = mapped_column(UTCDateTime)
    freq: Mapped[str] = mapped_column(String(8))
    indicator_version: Mapped[str] = mapped_column(String(20))
    product: Mapped[str] = mapped_column(String(200))
    product_version: Mapped[str] = mapped_column(String(60))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    points: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        # site first: the API's lookup (site, indicator) and the site deletion's cascade use it
        UniqueConstraint("site_id", "indicator_id", "source", name="uq_forecast_series_key"),
    )


#: Columns of `ForecastSeriesRow.points`, in the order of `ForecastValue`'s fields after the series ones.
POINT_COLUMNS = ("valid_day", "lead_days", "period_start", "value", "level", "material")


@dataclass(frozen=True)
class ForecastValue:
    """One stored forecast value: an indicator at a site on one valid day of one issue."""

    source: str
    site_id: str
    indicator_id: str
    issued: datetime
    freq: str
    indicator_version: str
    product: str
    product_version: str
    synthetic: bool
    valid_day: date
    lead_days: int
    period_start: date
    value: float | None
    level: int
    material: str | None


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
    """Insert forecast series rows given column-wise: COPY on PostgreSQL (psycopg), else executemany of
    tuples through the driver, each column converted by its SQLAlchemy type once per distinct value."""
    table = ForecastSeriesRow.__table__
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


#: Rows per executemany, and series per range of sites replaced at once on SQLite.
_BATCH = 20_000

#: Columns of a series row taken from its first record (the rest of the series shares them).
_SERIES_COLUMNS = ("site_id", "indicator_id", "freq", "indicator_version", "product", "product_version")


def series_rows(records: pd.DataFrame) -> dict[str, list]:
    """Forecast value records (ordered by site, indicator and valid day) as series rows, column-wise: one
    per (site, indicator), its points as columnar JSON. Numbers and dates are converted column-wise once;
    only the JSON text is made per series."""
    keys = [records[c].to_numpy() for c in ("site_id", "indicator_id")]
    change = np.zeros(len(records), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    bounds = [*starts.tolist(), len(records)]
    points = {
        "valid_day": _iso_dates(records["valid_day"]),
        "lead_days": records["lead_days"].astype(int).tolist(),
        "period_start": _iso_dates(records["period_start"]),
        "value": driver_values(records["value"].astype(float)),
        "level": records["level"].astype(int).tolist(),
        "material": driver_values(records["material"]),
    }
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    texts = [dumps({c: points[c][a:b] for c in POINT_COLUMNS}) for a, b in itertools.pairwise(bounds)]
    first = records.iloc[starts]
    columns = {c: driver_values(first[c]) for c in _SERIES_COLUMNS}
    columns["synthetic"] = [bool(v) for v in first["synthetic"].to_numpy()]
    columns["points"] = texts
    return columns


def _iso_dates(values: pd.Series) -> list[str]:
    """A column of dates as ISO text, each distinct date formatted once."""
    dates = driver_values(values)
    text = {d: d.isoformat() for d in set(dates)}
    return [text[d] for d in dates]


def replace_forecast(session: Session, issue: ForecastIssue, records: pd.DataFrame) -> int:
    """Store one issue of a source in place of the previous one (in the caller's transaction); returns the
    number of values written. `records` has the columns `RECORD_COLUMNS`."""
    t = ForecastSeriesRow
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
    records = records.iloc[key_order(records, ("site_id", "indicator_id", "valid_day"))]
    columns = series_rows(records)
    n = len(columns["points"])
    columns = {"source": [issue.source] * n, "issued": [issue.issued] * n} | columns
    if not sqlite:
        _bulk_insert(session, columns)
        return len(records)
    # On SQLite, by ranges of sites: the previous issue's rows of the range deleted, then the new ones
    # inserted, while the pages both touch are still in the page cache (deleting every row first spilled
    # the pages the delete dirtied, and the insert wrote them again). The ranges tile every site id in
    # SQLite's (binary) order, which is the order of `key_order`.
    for first, stop in _site_ranges(np.asarray(columns["site_id"], dtype=object)):
        in_range = [t.source == issue.source]
        if first > 0:
            in_range.append(t.site_id >= columns["site_id"][first])
        if stop < n:
            in_range.append(t.site_id < columns["site_id"][stop])
        session.execute(delete(t).where(*in_range))
        _bulk_insert(session, {c: values[first:stop] for c, values in columns.items()})
    return len(records)


def _site_ranges(site_ids: np.ndarray, size: int | None = None) -> list[tuple[int, int]]:
    """[first, stop) row ranges of about `size` rows (default `_BATCH`) over rows ordered by site, each
    holding whole sites."""
    size = size or _BATCH
    n = len(site_ids)
    starts = np.flatnonzero(np.r_[True, site_ids[1:] != site_ids[:-1]])  # each site's first row
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, np.arange(size, n, size)), len(starts) - 1)])
    bounds = [0, *(int(c) for c in cuts if 0 < c < n), n]
    return list(itertools.pairwise(bounds))


def unpack(rows: Iterable) -> list[ForecastValue]:
    """The forecast values of `ForecastSeriesRow`s, point by point (`issued` comes back aware, in UTC)."""
    out = []
    for row in rows:
        points = json.loads(row.points)
        head = (row.source, row.site_id, row.indicator_id, row.issued, row.freq, row.indicator_version)
        tail = (row.product, row.product_version, bool(row.synthetic))
        for day, lead, start, value, level, material in zip(*(points[c] for c in POINT_COLUMNS), strict=True):
            out.append(
                ForecastValue(
                    *head,
                    *tail,
                    valid_day=date.fromisoformat(day),
                    lead_days=int(lead),
                    period_start=date.fromisoformat(start),
                    value=value,
                    level=int(level),
                    material=material,
                )
            )
    return out


def forecast_values(
    store: Store, site_id: str, indicator_id: str
) -> tuple[list[ForecastValue], dict[str, ForecastIssue]]:
    """The stored forecast values of one indicator at one site by valid day, and the issues they are from."""
    t = ForecastSeriesRow
    with store.session() as s:
        rows = s.scalars(select(t).where(t.site_id == site_id, t.indicator_id == indicator_id)).all()
        values = sorted(unpack(rows), key=lambda v: (v.valid_day, v.source))
        issues = {src: stored_issue(s, src) for src in {v.source for v in values}}
    return values, {k: v for k, v in issues.items() if v is not None}


def stored_forecast_values(store: Store) -> pd.DataFrame:
    """Every stored forecast value, one row per (source, site, indicator, valid day): for exports,
    notebooks and checks over the whole table."""
    with store.session() as s:
        values = unpack(s.scalars(select(ForecastSeriesRow).order_by(ForecastSeriesRow.id)))
    columns = [f.name for f in dataclasses.fields(ForecastValue)]
    return pd.DataFrame([dataclasses.astuple(v) for v in values], columns=columns)
