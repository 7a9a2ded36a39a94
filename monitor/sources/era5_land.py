"""C3S ERA5-Land hourly reanalysis → daily climate variables per site.

Remote mode asks the CDS for ``reanalysis-era5-land`` (hourly 2 m temperature and dewpoint, total
precipitation, 10 m wind components), NetCDF, one request per calendar month and per group of nearby sites
(5° squares, `cds_common.tiles`) over the group's buffered bounds padded by one 0.1° cell. Local mode reads
the user's CDS downloads (NetCDF, GRIB, or the ZIP the CDS sends when instantaneous and accumulated
variables are mixed) from `HM_ERA5_LAND_PATH`. Other ERA5 hourly single-level files are read too (e.g. ERA5
t2m GRIB); whatever input is missing leaves its outputs NaN (attribute ``missing_inputs``).

Hourly fields are reduced to the sites first (`monitor.extract`: cell-area-weighted mean of the cells under
the polygon+buffer; sea cells of the land-only ERA5-Land are NaN and drop out), relative humidity and wind
speed being computed per cell before that. Daily values per UTC day D, from the 24 hourly values 00–23 UTC
(a day with a missing hour is NaN):

- ``tas``, ``tasmin``, ``tasmax`` (degC): mean, minimum, maximum of t2m;
- ``hurs`` (%): mean of the hourly relative humidity from t2m and d2m (`relative_humidity`);
- ``sfcWind`` (m s-1): mean of the hourly speed √(u10² + v10²);
- ``pr`` (mm d-1): precipitation fallen in (D 00 UTC, D+1 00 UTC]. ERA5-Land ``tp`` is accumulated since
  00 UTC: the value at hour h = 1…23 is the total since 00 UTC of the same day and the value at 00 UTC closes
  the *previous* day, so ``pr(D) = tp(D+1, 00 UTC)`` in metres × 1000. Files whose ``tp`` is not accumulated
  (ERA5 single levels: each value is the hour's own amount) are recognised (values falling within a day)
  and summed instead; see attribute ``precipitation_accumulation``.

For the Canadian Fire Weather Index (computed from local-noon weather), at the hour H nearest local solar
noon, H = round(12 − lon/15) mod 24 UTC from the site's longitude:
``tas_noon`` (degC), ``hurs_noon`` (%), ``sfcWind_noon`` (m s-1) at (D, H), and ``pr_noon`` (mm d-1), the
precipitation of the 24 hours ending at (D, H).

Long periods are reduced a year at a time (memory grows with sites × hours). ``product_version`` comes
from ``expver`` (0001 final ERA5-Land, 0005 preliminary); when it changes within
the period it is also a coordinate on ``time``.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from monitor.settings import Settings
from monitor.sources import SOURCES, DemoSource
from monitor.sources.base import Source, SourceNotAvailableError
from monitor.sources.cds_common import (
    CDS,
    CdsRetriever,
    Deadline,
    SiteSeries,
    check_source,
    chunks,
    concat_daily,
    daily_labels,
    files_in,
    finish_cube,
    local_files,
    merge_stats,
    month_spans,
    newest_mtime,
    now_iso,
    reduce_files,
    tiles,
    time_ranges,
    window_of,
)
from sites import SiteSet

SOURCE_ID = "era5_land"
DATASET = "reanalysis-era5-land"
GRID_DEGREES = 0.1

#: CDS request names of the provider variables we read, by their NetCDF/GRIB short name.
REQUEST_VARIABLES = {
    "t2m": "2m_temperature",
    "d2m": "2m_dewpoint_temperature",
    "tp": "total_precipitation",
    "u10": "10m_u_component_of_wind",
    "v10": "10m_v_component_of_wind",
}

VARIABLES: dict[str, dict[str, str]] = {
    "tas": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "Daily mean near-surface air temperature",
        "cell_methods": "area: mean time: mean",
    },
    "tasmin": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "Daily minimum near-surface air temperature",
        "cell_methods": "area: mean time: minimum",
    },
    "tasmax": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "Daily maximum near-surface air temperature",
        "cell_methods": "area: mean time: maximum",
    },
    "pr": {
        "units": "mm d-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": "Daily total precipitation (00-24 UTC)",
        "cell_methods": "area: mean time: sum",
    },
    "hurs": {
        "units": "%",
        "standard_name": "relative_humidity",
        "long_name": "Daily mean near-surface relative humidity (from 2 m dewpoint)",
        "cell_methods": "area: mean time: mean",
    },
    "sfcWind": {
        "units": "m s-1",
        "standard_name": "wind_speed",
        "long_name": "Daily mean 10 m wind speed",
        "cell_methods": "area: mean time: mean",
    },
    "tas_noon": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "Near-surface air temperature at the hour nearest local solar noon",
    },
    "hurs_noon": {
        "units": "%",
        "standard_name": "relative_humidity",
        "long_name": "Near-surface relative humidity at the hour nearest local solar noon",
    },
    "sfcWind_noon": {
        "units": "m s-1",
        "standard_name": "wind_speed",
        "long_name": "10 m wind speed at the hour nearest local solar noon",
    },
    "pr_noon": {
        "units": "mm d-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": "Precipitation of the 24 hours ending at the hour nearest local solar noon",
    },
}

EXPVER_LABELS = {"0001": "ERA5-Land (final, expver 0001)", "0005": "ERA5-Land (preliminary, expver 0005)"}


def relative_humidity(t_kelvin: Any, td_kelvin: Any) -> Any:
    """Relative humidity (%) from temperature and dewpoint (K), capped at 100 %.

    RH = 100 · e_sat(Td) / e_sat(T) with the saturation vapour pressure over water of the ECMWF IFS
    (IFS Documentation CY47R3, Part IV: Physical processes, §7.2.1, eq. 7.5; Buck 1981 coefficients):
    e_sat(T) = a1 · exp(a3 · (T − T0) / (T − a4)), a1 = 611.21 Pa, a3 = 17.502, a4 = 32.19 K, T0 = 273.16 K.
    This is the formula ECMWF recommends for ERA5 2 m relative humidity.
    """
    a3, a4, t0 = 17.502, 32.19, 273.16
    ratio = np.exp(a3 * (td_kelvin - t0) / (td_kelvin - a4) - a3 * (t_kelvin - t0) / (t_kelvin - a4))
    return np.minimum(100.0 * ratio, 100.0)


def noon_hours(sites: SiteSet) -> np.ndarray:
    """UTC hour nearest local solar noon of each site: round(12 − lon/15) mod 24."""
    lon = sites.centroids()[:, 0]
    return (np.round(12.0 - lon / 15.0).astype(int)) % 24


def _to_kelvin(da: xr.DataArray) -> xr.DataArray:
    units = str(da.attrs.get("units", "K")).strip()
    if units in ("degC", "C", "°C", "deg_C", "Celsius"):
        return da + 273.15
    return da


def _to_metres(da: xr.DataArray) -> xr.DataArray:
    units = str(da.attrs.get("units", "m")).strip()
    if units in ("mm", "kg m-2", "kg m**-2"):
        return da / 1000.0
    return da


def prepare(ds: xr.Dataset, path: Path) -> xr.Dataset | None:
    """Per-cell inputs of one normalised file: t2m, d2m (K), tp (m), u10, v10, and hurs, wind where both
    of their inputs are in the file; `product_version` from expver."""
    present = [
        v for v in REQUEST_VARIABLES if v in ds.data_vars and {"lat", "lon", "time"} <= set(ds[v].dims)
    ]
    if not present:
        return None
    out = xr.Dataset({v: ds[v] for v in present})
    if "member" in out.dims:
        out = out.isel(member=0, drop=True)
    for name in ("t2m", "d2m"):
        if name in out:
            out[name] = _to_kelvin(out[name]).assign_attrs(units="K")
    if "tp" in out:
        out["tp"] = _to_metres(out["tp"]).assign_attrs(units="m")
    if "t2m" in out and "d2m" in out:
        out["hurs"] = relative_humidity(out["t2m"], out["d2m"]).assign_attrs(units="%")
    if "u10" in out and "v10" in out:
        out["wind"] = np.hypot(out["u10"], out["v10"]).assign_attrs(units="m s-1")
    first = ds[present[0]].attrs
    out.attrs["grid_degrees"] = float(first.get("GRIB_iDirectionIncrementInDegrees", GRID_DEGREES))
    if "expver" in ds.coords and ds["expver"].dims == ("time",):
        labels = [EXPVER_LABELS.get(str(e), f"ERA5-Land (expver {e})") for e in ds["expver"].values]
        out = out.assign_coords(product_version=("time", np.array(labels, dtype=object)))
    return out


def _mask_variable(ds: xr.Dataset) -> str | None:
    return next((v for v in ("t2m", "d2m", "tp", "u10", "v10") if v in ds.data_vars), None)


def _hourly(series: SiteSeries, name: str, hours: pd.DatetimeIndex) -> np.ndarray | None:
    if not series.has(name):
        return None
    da = series.data[name]
    return da.reindex(time=hours.to_numpy()).transpose("site", "time").values.astype(np.float64)


def _window_sum(inc: np.ndarray, ends: np.ndarray, length: int = 24) -> np.ndarray:
    """Sum of `inc` over the `length` values ending at each index of `ends` (per site); NaN if any missing."""
    n_sites = inc.shape[0]
    zero = np.zeros((n_sites, 1))
    csum = np.concatenate([zero, np.cumsum(np.nan_to_num(inc), axis=1)], axis=1)
    ccount = np.concatenate([zero, np.cumsum(np.isfinite(inc), axis=1)], axis=1)
    rows = np.arange(n_sites)[:, None]
    hi, lo = ends + 1, ends + 1 - length
    ok = lo >= 0
    lo = np.where(ok, lo, 0)
    total = csum[rows, hi] - csum[rows, lo]
    count = ccount[rows, hi] - ccount[rows, lo]
    return np.where(ok & (count == length), total, np.nan)


def _increments(tp: np.ndarray, hours: pd.DatetimeIndex) -> tuple[np.ndarray, str]:
    """Hourly precipitation amounts (m) ending at each hour, from accumulated-since-00-UTC (ERA5-Land) or
    per-hour (ERA5 single levels) `tp`; which one is recognised from the data."""
    hour = hours.hour.to_numpy()
    prev = np.concatenate([np.full((tp.shape[0], 1), np.nan), tp[:, :-1]], axis=1)
    within = (hour >= 2)[None, :] & np.isfinite(tp) & np.isfinite(prev)
    drops = np.sum(within & (tp < prev - 1e-7))
    rises = np.sum(within & (tp > prev + 1e-7))
    if rises + drops > 0 and drops > 0.05 * (rises + drops):
        return np.maximum(tp, 0.0), "per hour (ERA5-style): daily totals are sums of the hourly values"
    prev = np.where((hour == 1)[None, :], 0.0, prev)
    inc = np.maximum(tp - prev, 0.0)
    return inc, "since 00 UTC (ERA5-Land): the 00 UTC value closes the previous day"


def daily_from_hourly(
    series: SiteSeries, sites: SiteSet, start: date, end: date
) -> tuple[xr.Dataset, str, list[str]]:
    """Daily (site, time) variables from site-level hourly series (see the module docstring)."""
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D").as_unit("ns")
    first = pd.Timestamp(start) - pd.Timedelta(days=1)
    hours = pd.date_range(first, pd.Timestamp(end) + pd.Timedelta(days=1, hours=23), freq="h").as_unit("ns")
    n_days = days.size
    # index of (day D, hour h) in `hours`: (D - first) days * 24 + h, D from start (offset 1 day)
    base = (np.arange(n_days) + 1) * 24
    noon = noon_hours(sites)
    out: dict[str, xr.DataArray] = {}
    missing: list[str] = []

    def per_day(values: np.ndarray) -> np.ndarray:
        block = values[:, 24 : 24 * (n_days + 1)].reshape(values.shape[0], n_days, 24)
        return block

    def daily_stat(values: np.ndarray, how: str) -> np.ndarray:
        block = per_day(values)
        stat = {"mean": np.mean, "min": np.min, "max": np.max}[how](block, axis=2)
        return np.where(np.all(np.isfinite(block), axis=2), stat, np.nan)

    def at_noon(values: np.ndarray) -> np.ndarray:
        idx = base[None, :] + noon[:, None]
        return np.take_along_axis(values, idx, axis=1)

    def put(name: str, values: np.ndarray) -> None:
        out[name] = xr.DataArray(values, dims=("site", "time"), coords={"time": days.to_numpy()})

    t = _hourly(series, "t2m", hours)
    if t is not None:
        tc = t - 273.15
        put("tas", daily_stat(tc, "mean"))
        put("tasmin", daily_stat(tc, "min"))
        put("tasmax", daily_stat(tc, "max"))
        put("tas_noon", at_noon(tc))
    else:
        missing.append("t2m")
    rh = _hourly(series, "hurs", hours)
    if rh is None:
        td = _hourly(series, "d2m", hours)
        if t is not None and td is not None:
            rh = relative_humidity(t, td)
        else:
            missing.append("d2m")
    if rh is not None:
        put("hurs", daily_stat(rh, "mean"))
        put("hurs_noon", at_noon(rh))
    wind = _hourly(series, "wind", hours)
    if wind is None:
        u, v = _hourly(series, "u10", hours), _hourly(series, "v10", hours)
        if u is not None and v is not None:
            wind = np.hypot(u, v)
        else:
            missing.append("u10/v10")
    if wind is not None:
        put("sfcWind", daily_stat(wind, "mean"))
        put("sfcWind_noon", at_noon(wind))
    tp = _hourly(series, "tp", hours)
    accumulation = "no precipitation input"
    if tp is not None:
        inc, accumulation = _increments(tp, hours)
        ends_day = np.broadcast_to(base[None, :] + 24, (len(sites), n_days))
        put("pr", _window_sum(inc, ends_day) * 1000.0)
        put("pr_noon", _window_sum(inc, base[None, :] + noon[:, None]) * 1000.0)
    else:
        missing.append("tp")

    daily = xr.Dataset(out)
    if "product_version" in series.data.coords:
        labels = daily_labels(series.data["product_version"], start, end)
        daily = daily.assign_coords(product_version=("time", labels))
    return daily, accumulation, missing


class Era5LandSource:
    """ERA5-Land in local or remote mode (see the module docstring)."""

    info = SOURCES[SOURCE_ID]

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"{SOURCE_ID}: unknown mode {mode!r}")
        self.settings = settings
        self.mode = mode
        self.retriever = CdsRetriever(settings, SOURCE_ID, CDS) if mode == "remote" else None

    def requests(self, sites: SiteSet, start: date, end: date) -> list[tuple[dict[str, Any], np.ndarray]]:
        """(CDS request, sites it serves) per calendar month and group of nearby sites (`tiles`), covering
        [start − 1 day, end + 1 day]: the day before for the 24 h precipitation ending at noon, the day after
        for the 00 UTC value that closes `end`."""
        out = []
        for tile in tiles(sites.geometries(buffered=True), GRID_DEGREES, decimals=1):
            for year, month, days in month_spans(start - timedelta(days=1), end + timedelta(days=1)):
                request = {
                    "variable": sorted(REQUEST_VARIABLES.values()),
                    "year": f"{year:04d}",
                    "month": f"{month:02d}",
                    "day": [f"{d:02d}" for d in days],
                    "time": [f"{h:02d}:00" for h in range(24)],
                    "area": tile.area,
                    "data_format": "netcdf",
                    "download_format": "unarchived",
                }
                out.append((request, tile.sites))
        return out

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        geoms = sites.geometries(buffered=True)
        owner: dict[str, np.ndarray] = {}
        if self.mode == "local":
            files = local_files(self.settings, SOURCE_ID)
            sent: list[dict[str, Any]] = []
            retrieved = newest_mtime(files)
            default_version = "ERA5-Land (local files)"
        else:
            assert self.retriever is not None
            deadline = Deadline(self.settings.cds_time_budget_seconds)
            raws = []
            for request, members in self.requests(sites, start, end):
                raw = self.retriever.retrieve(DATASET, request, deadline)
                owner[str(raw.path)] = members
                raws.append(raw)
            files = [r.path for r in raws]
            sent = [{"dataset": r.dataset, "request": r.request} for r in raws]
            retrieved = max(r.retrieved_at for r in raws) if raws else now_iso()
            default_version = "ERA5-Land"
        periods = chunks(start, end)
        ranges = time_ranges(files) if len(periods) > 1 else None
        daily_parts, series_parts = [], []
        accumulation, missing = "no precipitation input", None
        for first, last in periods:
            window = window_of(first, last, 1, 1)
            series = reduce_files(
                files if ranges is None else files_in(ranges, window),
                sites,
                geoms,
                window,
                prepare,
                mask_variable=_mask_variable,
                sites_of=lambda path: owner.get(str(path)),
            )
            daily, how, lacking = daily_from_hourly(series, sites, first, last)
            accumulation = how if series.has("tp") else accumulation
            missing = lacking if missing is None else [m for m in missing if m in lacking]
            daily_parts.append(daily)
            series_parts.append(series)
        coverage, covered, extraction = merge_stats(series_parts)
        extra = {
            "precipitation_accumulation": accumulation,
            "noon_hour_utc": "round(12 - lon/15) mod 24 per site",
            "humidity_formula": "IFS CY47R3 Part IV eq. 7.5 (Buck 1981 over water)",
        }
        if missing:
            extra["missing_inputs"] = ", ".join(missing)
        return finish_cube(
            concat_daily(daily_parts),
            sites,
            start,
            end,
            source_id=SOURCE_ID,
            product=DATASET,
            stats=(coverage, covered, extraction),
            variables=VARIABLES,
            requests=sent,
            retrieved_at=retrieved,
            default_version=default_version,
            extra_attrs=extra,
        )


def build(settings: Settings, mode: str) -> Source:
    """The ERA5-Land source in `mode` (local or remote; demo gives the synthetic stand-in)."""
    if mode == "demo":
        return DemoSource(SOURCES[SOURCE_ID])
    return Era5LandSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Whether the configured mode can work: local path readable, or CDS reachable with licence accepted."""
    return check_source(settings, SOURCE_ID, CDS, DATASET)
