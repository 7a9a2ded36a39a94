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
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path as FilePath
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Integer, String, select, type_coerce

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from api.schemas import TimePoint, TimeSeriesPublic
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
    q = select(*columns).where(t.c.site_id.in_(list(site_ids)), t.c.indicator_id.in_(list(indicator_ids)))
    if start:
        q = q.where(t.c.period_start >= start)
    if end:
        q = q.where(t.c.period_start <= end)
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
        "computed_at": pd.to_datetime(np.array(cols["computed_at"], dtype=object), utc=True),
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


#: Level names by code, code -1 (no data) last so that it indexes from the end.
_LEVEL_NAMES = np.array([*LEVELS, NO_DATA], dtype=object)


def period_ends(starts: pd.Series, freq: str) -> pd.Series:
    """Last day of each period starting at `starts` (`period_end` over a whole column)."""
    starts = pd.to_datetime(starts)
    if freq == "D":
        return starts
    if freq == "MS":
        return starts + pd.offsets.MonthEnd(0)
    if freq == "YS":
        return starts + pd.offsets.YearEnd(0)
    return starts + pd.tseries.frequencies.to_offset(freq) - pd.Timedelta(days=1)


def point_columns(frame: pd.DataFrame, freq: str) -> dict[str, list]:
    """The points of `frame` column by column: period_start and period_end (dates), value (None when
    missing), level name and material. Built with array operations, not per row: a daily series of a few
    decades has thousands of points, and the JSON responses are on the API's hottest path."""
    values = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    materials = frame["material"].astype(object)
    return {
        "period_start": pd.to_datetime(frame["period_start"]).dt.date.tolist(),
        "period_end": period_ends(frame["period_start"], freq).dt.date.tolist(),
        "value": [None if v != v else v for v in values.tolist()],
        "level": _LEVEL_NAMES[frame["level"].to_numpy(dtype=int)].tolist(),
        "material": materials.where(materials.notna(), None).tolist(),
    }


def _provenance(frames: dict[str, pd.DataFrame]) -> tuple[str, bool, str]:
    """(sources joined, synthetic?, attribution) over all rows."""
    sources: list[str] = []
    synthetic = False
    year = date.today().year
    for frame in frames.values():
        if frame.empty:
            continue
        for src in frame["source"].dropna().astype(str).unique():
            for part in src.split("+"):
                if part not in sources:
                    sources.append(part)
        synthetic = synthetic or bool(frame["synthetic"].astype(bool).any())
        year = pd.Timestamp(frame["period_start"].iloc[-1]).year
    return "+".join(sources), synthetic, series_attribution("+".join(sources), synthetic, year)


def _validators(frames: dict[str, pd.DataFrame], key: str) -> tuple[str, datetime | None]:
    """ETag (request + newest computed_at + row count) and Last-Modified of a response."""
    newest = None
    rows = 0
    for frame in frames.values():
        rows += len(frame)
        if len(frame) and "computed_at" in frame:
            stamp = pd.to_datetime(frame["computed_at"], utc=True).max()
            if pd.notna(stamp) and (newest is None or stamp > newest):
                newest = stamp
    modified = newest.to_pydatetime().replace(microsecond=0) if newest is not None else None
    digest = hashlib.sha256(f"{key}|{rows}|{newest}".encode()).hexdigest()[:32]
    return f'"{digest}"', modified


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
    for name in ("level",):
        _ = name
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


def _export(
    request: Request,
    frames: dict[str, pd.DataFrame],
    specs: dict[str, IndicatorSpec],
    sites: list[Site],
    fmt: str,
    resample: str | None,
    filename: str,
    json_body=None,
) -> Response:
    sources, synthetic, attr = _provenance(frames)
    etag, modified = _validators(frames, f"{request.url.path}?{request.url.query}|{fmt}")
    headers = _cache_headers(etag, modified)
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    if fmt == "json":
        return Response(json_body(sources, synthetic, attr), media_type="application/json", headers=headers)
    if fmt == "netcdf":
        data = to_netcdf(frames, specs, sites, resample, attr, synthetic, sources)
        headers["Content-Disposition"] = f'attachment; filename="{filename}.nc"'
        return Response(data, media_type=FORMATS["netcdf"], headers=headers)
    table = long_table(frames, specs, attr)
    if fmt == "parquet":
        headers["Content-Disposition"] = f'attachment; filename="{filename}.parquet"'
        return Response(to_parquet(table, attr), media_type=FORMATS["parquet"], headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return StreamingResponse(stream_csv(table), media_type="text/csv; charset=utf-8", headers=headers)


def _check_period(start, end) -> None:
    if start and end and start > end:
        raise ProblemError(422, "start must not be after end", errors=[{"field": "query.start"}])


@router.get(
    "/timeseries",
    summary="Time series of many indicators at many sites",
    responses=SUCCESS,
)
def read_many(
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
    site_set = store.site_set(site_ids)
    site_list = [site_set[i] for i in site_ids]
    frames = read_frames(store, site_ids, list(specs.values()), start, end, resample)
    fmt = negotiate(request, format)

    def body(sources: str, synthetic: bool, attr: str) -> str:
        import json

        series = []
        for ind, frame in frames.items():
            spec = specs[ind]
            freq = effective_freq(spec, resample)
            cols = point_columns(frame, freq)  # once per indicator, then picked per site
            rows_of = frame.groupby(frame["site_id"].astype(str), sort=False).indices if len(frame) else {}
            starts, ends, values, levels = (cols[c] for c in ("period_start", "period_end", "value", "level"))
            for site in site_list:
                series.append(
                    {
                        "site": site.id,
                        "site_name": site.name,
                        "indicator": ind,
                        "units": spec.units,
                        "freq": freq,
                        "points": [
                            {
                                "period_start": starts[i].isoformat(),
                                "period_end": ends[i].isoformat(),
                                "value": values[i],
                                "level": levels[i],
                            }
                            for i in rows_of.get(site.id, ())
                        ],
                    }
                )
        return json.dumps(
            {
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
                "source": sources or None,
                "synthetic": synthetic,
                "attribution": attr,
                "series": series,
            }
        )

    return _export(request, frames, specs, site_list, fmt, resample, "timeseries", body)


@router.get(
    "/sites/{site_id}/timeseries",
    summary="Time series of one indicator at one site",
    responses=SUCCESS,
)
def read_timeseries(
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
    site = store.get_site(site_id)
    _check_period(start, end)
    frames = read_frames(store, [site_id], [spec], start, end, resample)
    frame = frames[indicator]
    fmt = negotiate(request, format)
    freq = effective_freq(spec, resample)

    def body(sources: str, synthetic: bool, attr: str) -> str:
        last = frame.iloc[-1] if len(frame) else None
        cols = point_columns(frame, freq)
        return TimeSeriesPublic(
            site=site_id,
            site_name=site.name,
            indicator=indicator,
            title=spec.title,
            units=spec.units,
            freq=freq,
            indicator_version=str(last["indicator_version"]) if last is not None else spec.version,
            levels=spec.thresholds_for(None, site.thresholds.get(indicator)).as_dict(),
            source=str(last["source"]) if last is not None else None,
            product=str(last["product"]) if last is not None else None,
            product_version=str(last["product_version"]) if last is not None else None,
            synthetic=synthetic,
            attribution=attr,
            points=[
                TimePoint(period_start=s, period_end=e, value=v, level=lv, material=m)
                for s, e, v, lv, m in zip(*cols.values(), strict=True)
            ],
        ).model_dump_json()

    return _export(request, frames, {indicator: spec}, [site], fmt, resample, f"{site_id}_{indicator}", body)
