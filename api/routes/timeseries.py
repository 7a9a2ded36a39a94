"""Indicator time series: one site or many sites × indicators, as JSON, CSV, CF-NetCDF or Parquet.

Resampling (`resample=monthly|yearly`) aggregates the stored periods into calendar months or years; it
never refines (a yearly indicator stays yearly). The aggregation of values is declared per indicator by
`aggregation()`:

* `max` for peaks and categories: categorical indicators, emergency-family indices (fire weather, flood
  return period…), and indicators whose id starts with `max_` (e.g. `max_1day_precipitation`);
* `sum` for counts and totals: units `days`, `cycles`, `h`, and `mm` totals (`very_wet_days_total`);
* `mean` otherwise (indices, rates such as µm/yr, fractions).

The risk level of an aggregated period is always the **maximum** (worst) level of its periods.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from itertools import chain, pairwise, repeat
from pathlib import Path as FilePath
from typing import Annotated, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Integer, String, cast, func, select, type_coerce
from starlette.concurrency import run_in_threadpool

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from api.schemas import TimeSeriesPublic
from indicators import LEVELS, NO_DATA, CategoryLevels, IndicatorSpec, level_name
from monitor.alerts.episodes import period_end
from monitor.sources import SOURCES, attribution
from monitor.store.repository import VALUE_COLUMNS
from monitor.store.tables import IndicatorValueRow
from sites import Site

router = APIRouter(prefix="/api/v1", tags=["timeseries"], responses=COMMON_ERRORS)
FORMATS = {
    "json": "application/json",
    "csv": "text/csv",
    "netcdf": "application/x-netcdf",
    "parquet": "application/vnd.apache.parquet",
}
Format = Literal["json", "csv", "netcdf", "parquet"]
Resample = Literal["monthly", "yearly"]
RESAMPLE_FREQ = {"monthly": "MS", "yearly": "YS"}
FREQ_RANK = {"D": 0, "MS": 1, "YS": 2}
MAX_SITES = 500
SUCCESS = {
    200: {
        "description": "The series (format by `format=` or the Accept header).",
        "content": {
            "application/json": {},
            "text/csv": {"schema": {"type": "string"}},
            "application/x-netcdf": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {
            "ETag": {"schema": {"type": "string"}},
            "Last-Modified": {"schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified (the `If-None-Match` ETag still matches)."},
    **problem_responses(404),
}
StartQ = Annotated[
    date | None, Query(description="First period (inclusive), ISO date", examples=["2020-01-01"])
]
EndQ = Annotated[
    date | None, Query(description="Last period start (inclusive), ISO date", examples=["2025-12-31"])
]
FormatQ = Annotated[
    Format | None, Query(description="json, csv, netcdf (CF-1.10) or parquet (else Accept)", examples=["csv"])
]
ResampleQ = Annotated[
    Resample | None,
    Query(
        description="Aggregate into calendar months or years (see the aggregation rule)", examples=["yearly"]
    ),
]


def negotiate(request: Request, fmt: str | None) -> str:
    """The format asked by `format=` or else by the Accept header (JSON by default)."""
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    if "application/json" in accept:
        return "json"
    for name, media in FORMATS.items():
        if media in accept:
            return name
    return "json"


def series_attribution(sources: str, synthetic: bool, year: int) -> str:
    known = [s for s in sources.split("+") if s in SOURCES]
    text = " ".join(attribution(s, year) for s in known)
    if synthetic:
        return f"SYNTHETIC demo data, not Copernicus data. Real data would carry: {text}"
    return text


def aggregation(spec: IndicatorSpec) -> str:
    """How values of this indicator combine into a coarser period: max, sum or mean (module docstring)."""
    if isinstance(spec.levels, CategoryLevels) or spec.family == "emergency" or spec.id.startswith("max_"):
        return "max"
    if spec.units in ("days", "cycles", "h", "mm"):
        return "sum"
    return "mean"


def effective_freq(spec: IndicatorSpec, resample: str | None) -> str:
    if resample is None:
        return spec.freq
    target = RESAMPLE_FREQ[resample]
    return target if FREQ_RANK[target] > FREQ_RANK.get(spec.freq, 0) else spec.freq


def resample_frame(frame: pd.DataFrame, spec: IndicatorSpec, resample: str | None) -> pd.DataFrame:
    """Rows of one indicator aggregated to the resampled period (unchanged when not coarser)."""
    freq = effective_freq(spec, resample)
    if frame.empty or freq == spec.freq:
        return frame
    period = pd.to_datetime(frame["period_start"])
    period = period.dt.to_period("M" if freq == "MS" else "Y").dt.start_time.dt.date
    how = aggregation(spec)
    grouped = frame.assign(period_start=period).groupby(["site_id", "period_start"], sort=True)
    out = grouped.agg(
        value=("value", lambda v: getattr(v, how)(min_count=1) if how == "sum" else getattr(v, how)()),
        level=("level", "max"),
        **{c: (c, "last") for c in frame.columns if c not in ("site_id", "period_start", "value", "level")},
    ).reset_index()
    out["freq"] = freq
    return out[frame.columns]


#: Columns of `read_series`: those of `Store.series`.
_SERIES_COLUMNS = (*VALUE_COLUMNS, "computed_at")
#: Read as the driver gives them (ISO text on SQLite) and converted column-wise below, not row by row.
_RAW_COLUMNS = {"period_start", "computed_at", "synthetic"}


def _selection(site_ids: list[str], indicator_ids: list[str], start: date | None, end: date | None) -> list:
    """WHERE conditions of the stored rows a request selects."""
    t = IndicatorValueRow.__table__
    conditions = [t.c.site_id.in_(list(site_ids)), t.c.indicator_id.in_(list(indicator_ids))]
    if start:
        conditions.append(t.c.period_start >= start)
    if end:
        conditions.append(t.c.period_start <= end)
    return conditions


@lru_cache(maxsize=4096)
def _hot_sql(
    paramstyle: str, columns: str, sites: int, indicators_: int, start: bool, end: bool, tail: str
) -> str:
    """`SELECT columns FROM indicator_values WHERE <the selection> tail`, with the driver's placeholders."""
    mark = "?" if paramstyle == "qmark" else "%s"
    where = [
        f"site_id IN ({', '.join([mark] * sites)})",
        f"indicator_id IN ({', '.join([mark] * indicators_)})",
    ]
    where += [f"period_start >= {mark}"] * start + [f"period_start <= {mark}"] * end
    table = IndicatorValueRow.__tablename__
    return f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} {tail}"


def _driver_rows(
    store, columns: str, site_ids: list[str], indicator_ids: list[str], start, end, tail: str
) -> list[tuple]:
    """Rows of `_hot_sql` as the driver's own tuples, read on its cursor.

    The JSON time-series responses are the API's hottest path: their two queries skip building a
    statement and a Row per result row, which cost as much as SQLite's work on a series of a thousand
    points. Values come as the driver gives them: on SQLite, dates and timestamps as ISO text."""
    dialect = store.engine.dialect
    sql = _hot_sql(
        dialect.paramstyle, columns, len(site_ids), len(indicator_ids), bool(start), bool(end), tail
    )
    as_text = dialect.name == "sqlite"  # dates are stored as ISO text there; the driver would warn on date
    bounds = [d.isoformat() if as_text else d for d in (start, end) if d]
    with store.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, [*site_ids, *indicator_ids, *bounds])
            return cursor.fetchall()
        finally:
            cursor.close()


def _as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_utc(value) -> datetime:
    """A stored timestamp as the driver gives it (ISO text on SQLite), aware in UTC."""
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


#: Per (site, indicator) of a selection: its combination of indicator, source, product and versions when
#: its rows share one (min = max), the newest computed_at, the row count and the first and last period.
_SERIES_STATS = (
    "indicator_id, min(source), max(source), min(product), max(product), min(product_version), "
    "max(product_version), min(indicator_version), max(indicator_version), max(CAST(synthetic AS INTEGER)), "
    "max(computed_at), count(*), min(period_start), max(period_start)"
)


@dataclass(frozen=True)
class Provenance:
    """Where the selected rows come from and when they last changed, read with one GROUP BY query before
    any row is: the attribution of a response and its validators (a 304 reads no rows at all)."""

    sources: str
    synthetic: bool
    attribution: str
    rows: int
    newest: datetime | None
    #: Per indicator, the versions and source of its newest period (what the one-site response names).
    latest: dict[str, dict[str, str]]

    def validators(self, key: str) -> tuple[str, datetime | None]:
        """ETag (request + row count + newest computed_at) and Last-Modified."""
        newest = self.newest.astimezone(UTC) if self.newest is not None else None
        modified = newest.replace(microsecond=0) if newest is not None else None
        digest = hashlib.sha256(f"{key}|{self.rows}|{newest}".encode()).hexdigest()[:32]
        return f'"{digest}"', modified


def _provenance_groups(
    store, site_ids: list[str], indicator_ids: list[str], start: date | None, end: date | None
) -> list[list]:
    """Per (indicator, source, product, product_version, indicator_version): max synthetic, newest
    computed_at, row count, first and last period_start of the selected rows.

    One pass grouped by (site, indicator), the unique key's order: SQLite walks that index with or without
    table statistics, and sorts nothing. Grouped by indicator first, or unordered, it would read every
    site's rows of these indicators through the (indicator, period) index instead: 3× slower at 14 sites,
    and growing with their number. When each series' rows share one source, product and versions (the
    common case: min = max for each), those are its group, merged over sites. Otherwise the exact GROUP BY
    over the text columns runs, which sorts every row by them, at 3× the cost."""
    stats = _driver_rows(
        store, _SERIES_STATS, site_ids, indicator_ids, start, end, "GROUP BY site_id, indicator_id"
    )
    if all(r[1] == r[2] and r[3] == r[4] and r[5] == r[6] and r[7] == r[8] for r in stats):
        return _merged(
            [r[0], r[1], r[3], r[5], r[7], r[9], _as_utc(r[10]), r[11], _as_date(r[12]), _as_date(r[13])]
            for r in stats
        )
    t = IndicatorValueRow.__table__
    keys = (t.c.indicator_id, t.c.source, t.c.product, t.c.product_version, t.c.indicator_version)
    exact = select(
        *keys,
        func.max(cast(t.c.synthetic, Integer)),  # PostgreSQL has no max(boolean)
        func.max(t.c.computed_at),
        func.count(),
        func.min(t.c.period_start),
        func.max(t.c.period_start),
    ).where(*_selection(site_ids, indicator_ids, start, end))
    with store.engine.connect() as conn:
        return _merged(conn.execute(exact.group_by(t.c.site_id, *keys)).all())


def _merged(groups) -> list[list]:
    """Groups of `_provenance_groups` per site merged over sites (same first five fields)."""
    merged: dict[tuple, list] = {}
    for g in groups:
        key = tuple(g[:5])
        m = merged.get(key)
        if m is None:
            merged[key] = list(g)
            continue
        m[5] = max(m[5], g[5])
        m[6] = max(m[6], g[6])  # computed_at is NOT NULL: every group has a newest
        m[7] += g[7]
        m[8] = min(m[8], g[8])
        m[9] = max(m[9], g[9])
    return list(merged.values())


def read_provenance(
    store, site_ids: list[str], indicator_ids: list[str], start: date | None, end: date | None
) -> Provenance:
    """The `Provenance` of the rows `read_series` or `read_points` would return for the same selection."""
    groups = _provenance_groups(store, site_ids, indicator_ids, start, end)
    order = {ind: i for i, ind in enumerate(indicator_ids)}
    groups.sort(
        key=lambda g: (order.get(g[0], len(order)), g[8])
    )  # as the rows come: by indicator, then time
    sources: list[str] = []
    latest: dict[str, tuple] = {}
    for g in groups:
        for part in g[1].split("+"):
            if part not in sources:
                sources.append(part)
        if g[0] not in latest or g[9] >= latest[g[0]][9]:
            latest[g[0]] = g
    synthetic = any(bool(g[5]) for g in groups)
    stamps = [g[6] for g in groups if g[6] is not None]
    year = max(g[9] for g in groups).year if groups else date.today().year
    joined = "+".join(sources)
    return Provenance(
        sources=joined,
        synthetic=synthetic,
        attribution=series_attribution(joined, synthetic, year),
        rows=sum(g[7] for g in groups),
        newest=max(stamps) if stamps else None,
        latest={
            ind: {"source": g[1], "product": g[2], "product_version": g[3], "indicator_version": g[4]}
            for ind, g in latest.items()
        },
    )


def read_series(
    store, site_ids: list[str], indicator_ids: list[str], start: date | None, end: date | None
) -> pd.DataFrame:
    """`Store.series` for the API's hot path: the same rows and columns, read as plain tuples with a Core
    select and converted column by column (dates and timestamps vectorised) instead of row by row."""
    t = IndicatorValueRow.__table__
    columns = [
        type_coerce(t.c[c], String if c != "synthetic" else Integer) if c in _RAW_COLUMNS else t.c[c]
        for c in _SERIES_COLUMNS
    ]
    q = select(*columns).where(*_selection(site_ids, indicator_ids, start, end))
    q = q.order_by(t.c.site_id, t.c.indicator_id, t.c.period_start)
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    cols = dict(zip(_SERIES_COLUMNS, map(list, zip(*rows, strict=True)), strict=True)) if rows else {}
    cols = {c: cols.get(c, []) for c in _SERIES_COLUMNS}
    converted = {
        "value": np.array(cols["value"], dtype=float),  # NULL as NaN
        "coverage": np.array(cols["coverage"], dtype=float),
        "level": np.array(cols["level"], dtype=np.int64),
        "period_start": np.array(cols["period_start"], dtype="datetime64[D]").astype(object),  # dates
        "synthetic": np.array(cols["synthetic"], dtype=np.int64) != 0,
        # ISO 8601 in any of its forms: rows written before and after a change of the store's text form
        # (with or without an offset, with or without microseconds) can share a response
        "computed_at": pd.to_datetime(
            np.array(cols["computed_at"], dtype=object), utc=True, format="ISO8601"
        ),
    }
    frame = pd.DataFrame({c: converted.get(c, cols[c]) for c in _SERIES_COLUMNS})
    return frame


def read_frames(
    store, site_ids: list[str], specs: list[IndicatorSpec], start, end, resample
) -> dict[str, pd.DataFrame]:
    """Per indicator, the (resampled) stored rows of these sites, ordered by site and period."""
    raw = read_series(store, site_ids, [s.id for s in specs], start, end)
    out = {}
    for spec in specs:
        part = raw[raw["indicator_id"] == spec.id].reset_index(drop=True)
        out[spec.id] = resample_frame(part, spec, resample)
    return out


#: Level names by code; code -1 (no data) is last, so that it indexes from the end.
_LEVEL_NAMES = (*LEVELS, NO_DATA)
#: Fields of a point in the one-site JSON response.
_JSON_POINT = ("period_start", "period_end", "value", "level", "material")
#: Columns of `read_points`.
_POINT_COLUMNS = ("site_id", "period_start", "value", "level", "material")


@lru_cache(maxsize=65_536)
def _period_end_iso(start: str, freq: str) -> str:
    return period_end(date.fromisoformat(start), freq).isoformat()


def read_points(
    store,
    site_ids: list[str],
    specs: list[IndicatorSpec],
    start: date | None,
    end: date | None,
    resample: str | None,
    material: bool = True,
) -> dict[str, dict[str, list]]:
    """Per indicator, the points of the JSON responses as plain lists ordered by site and period: site_id,
    period_start and period_end (ISO dates), value (None when missing), level name and material (None
    for every point unless `material`).

    The JSON responses are the API's hottest path and most series are short, so this reads only these
    columns and builds no DataFrame unless a resample asks for one."""
    # every string column costs SQLite and the driver a new str per row: the site and indicator ids are
    # read only when the rows must be told apart, the material only when asked for or resampled
    single = len(site_ids) == 1 and len(specs) == 1
    keys = () if single else ("indicator_id", "site_id")
    columns = ["period_start", "value", "level"]
    with_material = material or resample is not None
    if with_material:
        columns.append("material")
    order = "ORDER BY site_id, indicator_id, period_start"  # the unique key's order: no sort
    rows = _driver_rows(
        store, ", ".join((*keys, *columns)), site_ids, [s.id for s in specs], start, end, order
    )
    # column-wise from here: one transpose, runs of (indicator, site) found by numpy, lists sliced
    transposed = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in (*keys, *columns)]
    data = transposed[len(keys) :]
    if not with_material:
        data.append([None] * len(rows))
    one_run = [((specs[0].id, site_ids[0]), 0, len(rows))] if rows else []  # one site, one indicator
    spans = _runs(*transposed[:2]) if keys else one_run
    runs: dict[str, list[tuple[str, int, int]]] = {}
    for (ind, site), first, stop in spans:
        runs.setdefault(ind, []).append((site, first, stop))
    nan_free = store.engine.dialect.name == "sqlite"  # SQLite stores a NaN as NULL
    out = {}
    for spec in specs:
        parts = runs.get(spec.id, [])
        cols = {"site_id": list(chain.from_iterable(repeat(site, stop - a) for site, a, stop in parts))}
        for name, column in zip(_POINT_COLUMNS[1:], data, strict=True):
            whole = len(parts) == 1 and parts[0][2] - parts[0][1] == len(column)
            cols[name] = column if whole else [x for _, a, stop in parts for x in column[a:stop]]
        if cols["period_start"] and not isinstance(cols["period_start"][0], str):  # dates from the driver
            cols["period_start"] = [d.isoformat() for d in cols["period_start"]]
        freq = effective_freq(spec, resample)
        if freq != spec.freq and parts:
            cols = _resample_points(cols, spec, resample)
        starts = cols["period_start"]
        values = cols["value"]
        out[spec.id] = {
            "site_id": cols["site_id"],
            "period_start": starts,
            "period_end": starts if freq == "D" else [_period_end_iso(d, freq) for d in starts],
            "value": values if nan_free else [None if v is None or v != v else v for v in values],
            "level": list(map(_LEVEL_NAMES.__getitem__, cols["level"])),
            "material": cols["material"],
        }
    return out


def _runs(*columns: list) -> list[tuple[tuple, int, int]]:
    """(keys, first, stop) of each run of consecutive rows equal in every one of these key columns, found
    by numpy rather than row by row."""
    n = len(columns[0])
    if not n:
        return []
    arrays = [np.asarray(c, dtype=object) for c in columns]
    change = np.zeros(n - 1, dtype=bool)
    for a in arrays:
        change |= a[1:] != a[:-1]
    bounds = [0, *(np.flatnonzero(change) + 1).tolist(), n]
    return [(tuple(a[first] for a in arrays), first, stop) for first, stop in pairwise(bounds)]


def _resample_points(cols: dict[str, list], spec: IndicatorSpec, resample: str | None) -> dict[str, list]:
    """`resample_frame` over point columns."""
    frame = pd.DataFrame(cols).astype({"value": float})
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    out = resample_frame(frame, spec, resample)
    return {
        "site_id": out["site_id"].astype(str).tolist(),
        "period_start": [d.isoformat() for d in out["period_start"]],
        "value": out["value"].tolist(),
        "level": out["level"].astype(int).tolist(),
        "material": out["material"].astype(object).where(out["material"].notna(), None).tolist(),
    }


def _not_modified(request: Request, etag: str, modified: datetime | None) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        return etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*"
    ims = request.headers.get("if-modified-since")
    if ims and modified is not None:
        try:
            return modified <= parsedate_to_datetime(ims).astimezone(UTC)
        except (TypeError, ValueError):
            return False
    return False


def _cache_headers(etag: str, modified: datetime | None) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
    return headers


def long_table(frames: dict[str, pd.DataFrame], specs: dict[str, IndicatorSpec], attr: str) -> pd.DataFrame:
    """One row per (site, indicator, period) with units, level and provenance."""
    parts = []
    for ind, frame in frames.items():
        spec = specs[ind]
        freq = frame["freq"].iloc[0] if len(frame) else spec.freq
        parts.append(
            pd.DataFrame(
                {
                    "site": frame["site_id"].astype(str),
                    "indicator": ind,
                    "period_start": pd.to_datetime(frame["period_start"]).dt.date,
                    "period_end": [period_end(d, freq) for d in frame["period_start"]],
                    "value": frame["value"].astype(float),
                    "units": spec.units,
                    "aggregation": aggregation(spec),
                    "level": [level_name(int(v)) for v in frame["level"]],
                    "material": frame["material"],
                    "indicator_version": frame["indicator_version"],
                    "source": frame["source"],
                    "product": frame["product"],
                    "product_version": frame["product_version"],
                    "synthetic": frame["synthetic"].astype(bool),
                    "attribution": attr,
                }
            )
        )
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def stream_csv(table: pd.DataFrame, chunk: int = 5000) -> Iterator[str]:
    """The table as CSV text, in chunks (the response streams)."""
    for i in range(0, max(len(table), 1), chunk):
        buf = io.StringIO()
        table.iloc[i : i + chunk].to_csv(buf, index=False, header=i == 0, quoting=csv.QUOTE_MINIMAL)
        yield buf.getvalue()


def to_netcdf(
    frames: dict[str, pd.DataFrame],
    specs: dict[str, IndicatorSpec],
    sites: list[Site],
    resample: str | None,
    attr: str,
    synthetic: bool,
    sources: str,
) -> bytes:
    """A CF-1.10 timeSeries file: dims (site, time), one value and one level variable per indicator."""
    site_ids = [s.id for s in sites]
    times = sorted({pd.Timestamp(d) for f in frames.values() for d in f["period_start"]})
    time_index = pd.DatetimeIndex(times)
    data_vars = {}
    products, versions, ind_versions = set(), set(), {}
    for ind, frame in frames.items():
        spec = specs[ind]
        values = np.full((len(site_ids), len(times)), np.nan)
        levels = np.full((len(site_ids), len(times)), -1, dtype=np.int8)
        if len(frame):
            si = pd.Index(site_ids).get_indexer(frame["site_id"])
            ti = time_index.get_indexer(pd.to_datetime(frame["period_start"]))
            values[si, ti] = frame["value"].astype(float).to_numpy()
            levels[si, ti] = frame["level"].astype(int).to_numpy()
            products |= set(frame["product"].dropna().astype(str))
            versions |= set(frame["product_version"].dropna().astype(str))
            ind_versions[ind] = ",".join(sorted(set(frame["indicator_version"].dropna().astype(str))))
        freq = frame["freq"].iloc[0] if len(frame) else effective_freq(spec, resample)
        data_vars[ind] = (
            ("site", "time"),
            values,
            {
                "units": spec.units,
                "long_name": spec.title,
                "coordinates": "lat lon site_name",
                "cell_methods": f"time: {aggregation(spec)}" if resample else "time: point",
                "indicator_version": ind_versions.get(ind, spec.version),
                "period": freq,
                "comment": spec.description[:500],
            },
        )
        data_vars[f"{ind}_level"] = (
            ("site", "time"),
            levels,
            {
                "long_name": f"risk level of {spec.title}",
                "flag_values": np.array([-1, 0, 1, 2, 3, 4], dtype=np.int8),
                "flag_meanings": "no_data none low moderate high severe",
                "_FillValue": np.int8(-1),
            },
        )
    lons = [s.centroid[0] for s in sites]
    lats = [s.centroid[1] for s in sites]
    ds = xr.Dataset(
        {name: (dims, vals, attrs) for name, (dims, vals, attrs) in data_vars.items()},
        coords={
            "site": (
                "site",
                np.array(site_ids, dtype=object),
                {"cf_role": "timeseries_id", "long_name": "site id"},
            ),
            "time": (
                "time",
                time_index,
                {"standard_name": "time", "long_name": "start of period", "axis": "T"},
            ),
            "lat": ("site", np.array(lats), {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("site", np.array(lons), {"standard_name": "longitude", "units": "degrees_east"}),
            "site_name": (
                "site",
                np.array([s.name for s in sites], dtype=object),
                {"long_name": "site name"},
            ),
        },
    )
    for v in ds.data_vars:
        if v.endswith("_level"):
            ds[v].attrs.pop("_FillValue", None)
            ds[v].encoding["_FillValue"] = np.int8(-1)
        else:
            ds[v].encoding["_FillValue"] = np.nan
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    ds.attrs = {
        "Conventions": "CF-1.10",
        "featureType": "timeSeries",
        "title": "Heritage risk indicators" + (" (SYNTHETIC demo data)" if synthetic else ""),
        "institution": "Heritage Monitor",
        "source": sources or "none",
        "product": ",".join(sorted(products)),
        "product_version": ",".join(sorted(versions)),
        "indicator_version": "; ".join(f"{k}={v}" for k, v in ind_versions.items()),
        "provenance": f"source={sources}; product={','.join(sorted(products))}; "
        f"product_version={','.join(sorted(versions))}; "
        + "; ".join(f"{k} version {v}" for k, v in ind_versions.items()),
        "history": f"{now} exported by Heritage Monitor API"
        + (f", resampled {resample}" if resample else ""),
        "attribution": attr,
        "license": "Copernicus licence: see attribution",
        "synthetic": "true" if synthetic else "false",
    }
    ds.time.encoding["units"] = "days since 1970-01-01"
    ds.time.encoding["calendar"] = "proleptic_gregorian"
    with tempfile.TemporaryDirectory(prefix="hm-nc-") as tmp:
        path = FilePath(tmp) / "series.nc"
        ds.to_netcdf(path, engine="netcdf4")
        return path.read_bytes()


def to_parquet(table: pd.DataFrame, attr: str) -> bytes:
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"attribution": attr.encode()})
    buf = io.BytesIO()
    pq.write_table(arrow, buf)
    return buf.getvalue()


def _split(value: str, field: str, limit: int) -> list[str]:
    items = list(dict.fromkeys(x.strip() for x in value.split(",") if x.strip()))
    if not items:
        raise ProblemError(422, f"{field} must name at least one id", errors=[{"field": f"query.{field}"}])
    if len(items) > limit:
        raise ProblemError(422, f"at most {limit} {field}", errors=[{"field": f"query.{field}"}])
    return items


def _respond(
    request: Request,
    provenance: Provenance,
    fmt: str,
    json_body: Callable[[], dict],
    export: Callable[[dict[str, str]], Response],
) -> Response:
    """304 when the client's copy is current; else the JSON body or the file `export` writes."""
    etag, modified = provenance.validators(f"{request.url.path}?{request.url.query}|{fmt}")
    headers = _cache_headers(etag, modified)
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    if fmt == "json":
        return Response(orjson.dumps(json_body()), media_type="application/json", headers=headers)
    return export(headers)


def _export(
    frames: dict[str, pd.DataFrame],
    specs: dict[str, IndicatorSpec],
    sites: list[Site],
    fmt: str,
    resample: str | None,
    filename: str,
    provenance: Provenance,
    headers: dict[str, str],
) -> Response:
    """The rows as a CF-NetCDF, Parquet or (streamed) CSV file."""
    attr = provenance.attribution
    if fmt == "netcdf":
        data = to_netcdf(frames, specs, sites, resample, attr, provenance.synthetic, provenance.sources)
        headers["Content-Disposition"] = f'attachment; filename="{filename}.nc"'
        return Response(data, media_type=FORMATS["netcdf"], headers=headers)
    table = long_table(frames, specs, attr)
    if fmt == "parquet":
        headers["Content-Disposition"] = f'attachment; filename="{filename}.parquet"'
        return Response(to_parquet(table, attr), media_type=FORMATS["parquet"], headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return StreamingResponse(stream_csv(table), media_type="text/csv; charset=utf-8", headers=headers)


#: JSON answers of at most this many series are built on the event loop (see `_answer`).
INLINE_SERIES = 16


async def _answer(work: Callable[[], Response], inline: bool) -> Response:
    """`work()`: the queries and the answer of a request, run on the event loop when `inline`, else in the
    thread pool.

    A JSON answer of a few series is the API's most frequent request and takes a few milliseconds, mostly
    interpreter time: handing it to a worker thread and back cost about as much again, and under load
    the threads and the event loop contend for the interpreter lock. Exports and answers of many series
    can take far longer, so they leave the event loop free."""
    return work() if inline else await run_in_threadpool(work)


def _check_period(start, end) -> None:
    if start and end and start > end:
        raise ProblemError(422, "start must not be after end", errors=[{"field": "query.start"}])


@router.get(
    "/timeseries",
    summary="Time series of many indicators at many sites",
    responses=SUCCESS,
)
async def read_many(
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    sites: Annotated[
        str,
        Query(
            max_length=20_000,
            description=f"Comma-separated site ids (≤ {MAX_SITES})",
            examples=["athens,krakow"],
        ),
    ],
    indicators_: Annotated[
        str,
        Query(
            alias="indicators",
            max_length=5_000,
            description="Comma-separated indicator ids",
            examples=["hot_days,freeze_thaw_cycles"],
        ),
    ],
    start: StartQ = None,
    end: EndQ = None,
    resample: ResampleQ = None,
    format: FormatQ = None,
) -> Response:
    """Values, levels, units and provenance of sites × indicators. JSON groups by (site, indicator); CSV and
    Parquet are long tables; NetCDF is a CF-1.10 timeSeries file (dims site, time). `resample` aggregates
    with each indicator's declared `aggregation` (max, sum or mean); levels take the maximum."""
    _check_period(start, end)
    site_ids = _split(sites, "sites", MAX_SITES)
    specs = {i: indicators.get(i) for i in _split(indicators_, "indicators", 200)}
    fmt = negotiate(request, format)

    def answer() -> Response:
        labels = store.site_labels(site_ids)
        provenance = read_provenance(store, site_ids, list(specs), start, end)

        def body() -> dict:
            points = read_points(store, site_ids, list(specs.values()), start, end, resample, material=False)
            series = []
            for ind, cols in points.items():
                spec = specs[ind]
                freq = effective_freq(spec, resample)
                rows_of = {site_id: range(a, b) for (site_id,), a, b in _runs(cols["site_id"])}
                starts, ends, values, levels = (
                    cols[c] for c in ("period_start", "period_end", "value", "level")
                )
                for site in labels.values():
                    series.append(
                        {
                            "site": site.id,
                            "site_name": site.name,
                            "indicator": ind,
                            "units": spec.units,
                            "freq": freq,
                            "points": [
                                {
                                    "period_start": starts[i],
                                    "period_end": ends[i],
                                    "value": values[i],
                                    "level": levels[i],
                                }
                                for i in rows_of.get(site.id, ())
                            ],
                        }
                    )
            return {
                "sites": site_ids,
                "indicators": [
                    {
                        "id": s.id,
                        "title": s.title,
                        "units": s.units,
                        "freq": effective_freq(s, resample),
                        "aggregation": aggregation(s),
                        "version": s.version,
                    }
                    for s in specs.values()
                ],
                "resample": resample,
                "level_aggregation": "max",
                "source": provenance.sources or None,
                "synthetic": provenance.synthetic,
                "attribution": provenance.attribution,
                "series": series,
            }

        def export(headers: dict[str, str]) -> Response:
            frames = read_frames(store, site_ids, list(specs.values()), start, end, resample)
            site_set = store.site_set(site_ids)
            sites_ = [site_set[i] for i in site_ids]
            return _export(frames, specs, sites_, fmt, resample, "timeseries", provenance, headers)

        return _respond(request, provenance, fmt, body, export)

    return await _answer(answer, inline=fmt == "json" and len(site_ids) * len(specs) <= INLINE_SERIES)


@router.get(
    "/sites/{site_id}/timeseries",
    summary="Time series of one indicator at one site",
    responses={**SUCCESS, 200: {**SUCCESS[200], "model": TimeSeriesPublic}},
)
async def read_timeseries(
    site_id: Annotated[str, Path(description="Site id", examples=["krakow"])],
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    indicator: Annotated[str, Query(description="Indicator id", examples=["freeze_thaw_cycles"])],
    start: StartQ = None,
    end: EndQ = None,
    format: FormatQ = None,
    resample: ResampleQ = None,
) -> Response:
    """Values, risk levels, units, provenance and attribution of one indicator at one site."""
    spec = indicators.get(indicator)
    _check_period(start, end)
    fmt = negotiate(request, format)
    freq = effective_freq(spec, resample)

    def answer() -> Response:
        site = store.site_labels([site_id])[site_id]
        provenance = read_provenance(store, [site_id], [indicator], start, end)

        def body() -> dict:
            cols = read_points(store, [site_id], [spec], start, end, resample)[indicator]
            latest = provenance.latest.get(indicator, {})
            return {
                "site": site_id,
                "site_name": site.name,
                "indicator": indicator,
                "title": spec.title,
                "units": spec.units,
                "freq": freq,
                "indicator_version": latest.get("indicator_version", spec.version),
                "levels": spec.thresholds_for(None, site.thresholds.get(indicator)).as_dict(),
                "source": latest.get("source"),
                "product": latest.get("product"),
                "product_version": latest.get("product_version"),
                "synthetic": provenance.synthetic,
                "attribution": provenance.attribution,
                "points": [
                    {"period_start": s, "period_end": e, "value": v, "level": lv, "material": m}
                    for s, e, v, lv, m in zip(
                        *(cols[c] for c in ("period_start", "period_end", "value", "level", "material")),
                        strict=True,
                    )
                ],
            }

        def export(headers: dict[str, str]) -> Response:
            frames = read_frames(store, [site_id], [spec], start, end, resample)
            return _export(
                frames,
                {indicator: spec},
                [store.get_site(site_id)],
                fmt,
                resample,
                f"{site_id}_{indicator}",
                provenance,
                headers,
            )

        return _respond(request, provenance, fmt, body, export)

    return await _answer(answer, inline=fmt == "json")
