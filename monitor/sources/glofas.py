"""CEMS GloFAS river discharge (EWDS) → daily discharge at the river pixel serving each site.

Remote mode asks the Early Warning Data Store for ``cems-glofas-historical`` (LISFLOOD reanalysis,
``system_version`` from `HM_GLOFAS_SYSTEM_VERSION`, consolidated product, falling back to the intermediate
one for recent months), NetCDF, one request per calendar month and group of nearby sites, over the sites'
buffered bounds grown by the search radius and padded by one 0.05° cell. The request schema of this dataset
has changed over time (``hyear/hmonth/hday`` vs ``year/month/day``, the variable's name): the request is
adapted to the live schema read from ``GET …/retrieve/v1/processes/cems-glofas-historical`` before it is
sent (the cache key is the request as we build it).

Forecasts (`fetch_forecast`) come from ``cems-glofas-forecast``: the control forecast issued at 00 UTC of
one day, lead times 24 h … 720 h, NetCDF, per group of nearby sites. The value of lead 24 h is the mean
of the issue day, so the forecast covers 30 valid days from the issue day on (lead 0 … 29 days). They are
reduced to the same river pixels as the observed data and never stored as observed variables.

Local mode reads the user's downloads (NetCDF or GRIB, ``dis24``) from `HM_GLOFAS_PATH`.

Discharge is a property of a river, not of an area: a site does not get the mean of the cells under its
polygon (mostly hillslopes of tiny catchments) but the value of the one pixel of the river that serves it —
the pixel with the largest upstream area among the cells whose centres lie within `HM_GLOFAS_SEARCH_RADIUS_KM`
of the site's polygon+buffer (failing any, the cell under the site). Upstream areas come from GloFAS's
auxiliary map (`HM_GLOFAS_UPSTREAM_AREA_PATH`, ``uparea`` in m²); without it the pixel of largest mean
discharge over the fetched period stands in (said in attribute ``river_pixel_method``). The choice is made
once per grid and kept for every file of the fetch; it is reported per site (``river_lat``,
``river_lon``, ``upstream_area``). ``coverage`` is 1 when a river pixel with data was found, else 0;
``extraction`` is ``river_pixel``, ``none`` or ``outside``.

``dis24`` is the mean discharge of the 24 hours ending at the time stamp: a value stamped at 00 UTC with a
24 h lead (``valid_time`` = reference time + 24 h, as the GRIB "0-24" step converts) belongs to the day
before; a file without lead information is taken as labelled by its day.

Return-period thresholds (`HM_GLOFAS_THRESHOLDS_PATH`: GloFAS v4 ``flood_threshold_glofas_v4_rl_{2.0,5.0,
20.0}.nc`` files or one file with variables ``rl_2.0``…) give per site ``dis24_rp2``, ``dis24_rp5`` and
``dis24_rp20`` at its river pixel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.extract import Grid
from monitor.settings import Settings
from monitor.sources import SOURCES, DemoSource
from monitor.sources.base import Source, SourceNotAvailableError, SourceRequestError, as_forecast
from monitor.sources.cds_common import (
    EWDS,
    CdsRetriever,
    Deadline,
    Raw,
    check_source,
    daily_labels,
    daily_mean,
    finish_cube,
    local_files,
    month_spans,
    newest_mtime,
    now_iso,
    reduce_files,
    tiles,
    window_of,
)
from monitor.sources.normalise import iter_files, open_normalised
from sites import SiteSet

SOURCE_ID = "glofas"
DATASET = "cems-glofas-historical"
FORECAST_DATASET = "cems-glofas-forecast"
GRID_DEGREES = 0.05
VARIABLE = "river_discharge_in_the_last_24_hours"
FILE_VARIABLES = ("dis24", "dis")
RETURN_PERIODS = (2, 5, 20)
MAX_FORECAST_DAYS = 30

VARIABLES: dict[str, dict[str, str]] = {
    "dis24": {
        "units": "m3 s-1",
        "standard_name": "water_volume_transport_in_river_channel",
        "long_name": "Mean river discharge of the day at the site's river pixel",
        "cell_methods": "time: mean",
    }
}


def adapt_to_schema(request: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """The historical request rewritten to the live schema: ``hyear/hmonth/hday`` or ``year/month/day``,
    and the variable name the schema lists for 24-hour discharge."""
    req = dict(request)
    if not inputs:
        return req
    if "hyear" in req and "hyear" not in inputs and "year" in inputs:
        for old, new in (("hyear", "year"), ("hmonth", "month"), ("hday", "day")):
            if old in req:
                req[new] = req.pop(old)
    elif "year" in req and "year" not in inputs and "hyear" in inputs:
        for old, new in (("year", "hyear"), ("month", "hmonth"), ("day", "hday")):
            if old in req:
                req[new] = req.pop(old)
    schema = (inputs.get("variable") or {}).get("schema") or {}
    allowed = schema.get("enum") or (schema.get("items") or {}).get("enum") or []
    wanted = req.get("variable")
    names = wanted if isinstance(wanted, list) else [wanted]
    if allowed and any(n not in allowed for n in names):
        match = [a for a in allowed if VARIABLE in a]
        if match:
            best = VARIABLE if VARIABLE in match else match[0]
            req["variable"] = [best] if isinstance(wanted, list) else best
    return req


def _rl_period(name: str) -> float | None:
    m = re.fullmatch(r"rl_?(\d+(?:\.\d+)?)", name.strip().lower())
    return float(m.group(1)) if m else None


def _nearest(ds: xr.Dataset, name: str, lat: np.ndarray, lon: np.ndarray, tolerance: float) -> np.ndarray:
    """Values of a (lat, lon) field at points (nearest cell within `tolerance` degrees), NaN elsewhere."""
    da = ds[name]
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if extra:
        da = da.isel({d: 0 for d in extra}, drop=True)
    out = np.full(lat.size, np.nan)
    if lat.size == 0:
        return out
    picked = da.sel(lat=xr.DataArray(lat, dims="p"), lon=xr.DataArray(lon, dims="p"), method="nearest").load()
    near = (np.abs(picked["lat"].values - lat) <= tolerance) & (
        np.abs(picked["lon"].values - lon) <= tolerance
    )
    out[near] = picked.values.astype(float)[near]
    return out


class GlofasSource:
    """GloFAS discharge in local or remote mode (see the module docstring)."""

    info = SOURCES[SOURCE_ID]

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"{SOURCE_ID}: unknown mode {mode!r}")
        self.settings = settings
        self.mode = mode
        self.retriever = CdsRetriever(settings, SOURCE_ID, EWDS) if mode == "remote" else None
        self._versions: dict[str, str] = {}
        self._pixels: dict[str, dict[str, np.ndarray]] = {}
        self._method = ""

    # .. requests ......................................................................................

    def _search_areas(self, sites: SiteSet) -> list[BaseGeometry]:
        from sites.geometry import buffer_geometries

        geoms = sites.geometries(buffered=True)
        radius = self.settings.glofas_search_radius_km * 1000.0
        return buffer_geometries(geoms, [radius] * len(geoms)) if radius > 0 else geoms

    def requests(
        self, sites: SiteSet, start: date, end: date
    ) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(dataset, request, sites it serves) per calendar month and group of nearby sites, the area covering
        each site's search radius."""
        out = []
        for tile in tiles(self._search_areas(sites), GRID_DEGREES):
            # the value of day D is stamped D+1 00 UTC: ask one day more
            for year, month, days in month_spans(start, end + timedelta(days=1)):
                request = {
                    "system_version": [self.settings.glofas_system_version],
                    "hydrological_model": ["lisflood"],
                    "product_type": ["consolidated"],
                    "variable": [VARIABLE],
                    "hyear": [f"{year:04d}"],
                    "hmonth": [f"{month:02d}"],
                    "hday": [f"{d:02d}" for d in days],
                    "area": tile.area,
                    "data_format": "netcdf",
                    "download_format": "unarchived",
                }
                out.append((DATASET, request, tile.sites))
        return out

    def forecast_requests(
        self, sites: SiteSet, issued: date, days: int = MAX_FORECAST_DAYS
    ) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(dataset, request, sites it serves) of the control forecast issued at 00 UTC on `issued`, per group
        of nearby sites: lead times 24 h … 24·`days` h."""
        return [
            (
                FORECAST_DATASET,
                {
                    "system_version": ["operational"],
                    "hydrological_model": ["lisflood"],
                    "product_type": ["control_forecast"],
                    "variable": VARIABLE,
                    "year": [f"{issued.year:04d}"],
                    "month": [f"{issued.month:02d}"],
                    "day": [f"{issued.day:02d}"],
                    "leadtime_hour": [str(24 * k) for k in range(1, min(days, MAX_FORECAST_DAYS) + 1)],
                    "area": tile.area,
                    "data_format": "netcdf",
                    "download_format": "unarchived",
                },
                tile.sites,
            )
            for tile in tiles(self._search_areas(sites), GRID_DEGREES)
        ]

    def _retrieve(self, dataset: str, request: dict[str, Any], deadline: Deadline) -> Raw:
        assert self.retriever is not None
        adapt = adapt_to_schema if dataset == DATASET else None
        try:
            return self.retriever.retrieve(dataset, request, deadline, adapt=adapt)
        except SourceRequestError:
            if request.get("product_type") != ["consolidated"]:
                raise
            retry = {**request, "product_type": ["intermediate"]}
            return self.retriever.retrieve(dataset, retry, deadline, adapt=adapt)

    # .. files ..........................................................................................

    def prepare(self, ds: xr.Dataset, path: Path) -> xr.Dataset | None:
        """Daily discharge of one normalised file, labelled by the day its 24-hour window covers."""
        var = next((v for v in FILE_VARIABLES if v in ds.data_vars), None)
        if var is None or not {"lat", "lon", "time"} <= set(ds[var].dims):
            return None
        da = ds[var]
        if "member" in da.dims:
            da = da.isel(member=0, drop=True)
        da = da.transpose("time", "lat", "lon")
        times = da["time"].values
        if "lead" in ds.coords:
            lead = ds["lead"].values.astype("timedelta64[h]").astype(int)
            shift = np.where(lead >= 24, np.timedelta64(24, "h"), np.timedelta64(0, "h"))
            times = times - shift
        da = da.assign_coords(time=times)
        out = xr.Dataset({"dis24": da.assign_attrs(units="m3 s-1")})
        out.attrs["grid_degrees"] = GRID_DEGREES
        version = self._versions.get(str(path)) or str(ds.attrs.get("product_version", ""))
        if version:
            out = out.assign_coords(
                product_version=("time", np.full(out.sizes["time"], version, dtype=object))
            )
        return out

    def _choose_pixels(self, grid: Grid, data: xr.DataArray, search: Sequence[BaseGeometry], geoms) -> dict:
        """Per site: data indices of its river pixel (−1: none), its coordinates and upstream area (km²)."""
        n = len(geoms)
        west, south, east, north = grid.bounds
        extent = shapely.box(west, south, east, north)
        covered = np.asarray(shapely.intersects(np.asarray(geoms, dtype=object), extent), dtype=bool)
        complete = np.asarray(shapely.within(np.asarray(list(search), dtype=object), extent), dtype=bool)
        upstream = self._upstream_map()
        self._method = (
            "largest upstream area (GloFAS upstream-area map) within the search radius"
            if upstream is not None
            else "largest mean discharge within the search radius (no upstream-area map configured)"
        )
        chosen_lat = np.full(n, -1, dtype=np.int64)
        chosen_lon = np.full(n, -1, dtype=np.int64)
        up_km2 = np.full(n, np.nan)
        for i in np.flatnonzero(covered):
            area = search[i]
            w, s, e, nn = area.bounds
            ilat = np.flatnonzero((grid.lat >= s) & (grid.lat <= nn))
            ilon = np.flatnonzero((grid.lon >= w) & (grid.lon <= e))
            la, lo = (a.ravel() for a in np.meshgrid(ilat, ilon, indexing="ij"))
            inside = shapely.contains_xy(area, grid.lon[lo], grid.lat[la]) if la.size else np.zeros(0, bool)
            la, lo = la[inside], lo[inside]
            if la.size == 0:
                p = geoms[i].representative_point()
                la = np.array([int(np.argmin(np.abs(grid.lat - p.y)))])
                lo = np.array([int(np.argmin(np.abs(grid.lon - p.x)))])
            values = data.isel(lat=xr.DataArray(la, dims="c"), lon=xr.DataArray(lo, dims="c")).values
            values = values.reshape(-1, la.size)
            valid = np.isfinite(values).any(axis=0)
            if not valid.any():
                continue
            if upstream is not None:
                tol = max(grid.dlat, grid.dlon) * 0.51
                score = _nearest(upstream, "uparea", grid.lat[la], grid.lon[lo], tol)
            else:
                with np.errstate(all="ignore"):
                    score = np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=0)
            score = np.where(valid & np.isfinite(score), score, -np.inf)
            if not np.isfinite(score).any():
                score = np.where(valid, 0.0, -np.inf)
            k = int(np.argmax(score))
            chosen_lat[i], chosen_lon[i] = la[k], lo[k]
            if upstream is not None and np.isfinite(score[k]):
                up_km2[i] = score[k] / 1e6
        lat = np.where(chosen_lat >= 0, grid.lat[np.maximum(chosen_lat, 0)], np.nan)
        lon = np.where(chosen_lon >= 0, grid.lon[np.maximum(chosen_lon, 0)], np.nan)
        return {
            "ilat": chosen_lat,
            "ilon": chosen_lon,
            "lat": lat,
            "lon": lon,
            "upstream": up_km2,
            "covered": covered,
            "complete": complete,
        }

    def _river_pixels(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per site the river pixel found on a grid holding its whole search area (else on any grid)."""
        lat, lon, upstream = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        best = np.zeros(n, dtype=int)  # 0 none, 1 found on a partial grid, 2 found on a complete grid
        for px in self._pixels.values():
            rank = np.where(px["ilat"] >= 0, np.where(px["complete"], 2, 1), 0)
            take = rank > best
            lat = np.where(take, px["lat"], lat)
            lon = np.where(take, px["lon"], lon)
            upstream = np.where(take, px["upstream"], upstream)
            best = np.maximum(best, rank)
        return lat, lon, upstream

    def _upstream_map(self) -> xr.Dataset | None:
        path = self.settings.glofas_upstream_area_path
        if path is None:
            return None
        with open_normalised(Path(path)) as datasets:
            for ds in datasets:
                name = next((v for v in ("uparea", "upArea", "upa", "ups") if v in ds.data_vars), None)
                if name is None:
                    continue
                return xr.Dataset({"uparea": ds[name]}).load()
        raise SourceNotAvailableError(f"HM_GLOFAS_UPSTREAM_AREA_PATH={path}: no `uparea` variable found")

    def _reducer(self, search: Sequence[BaseGeometry]):
        def reduce(
            data: xr.Dataset,
            sites: SiteSet,
            *,
            mask_variable: str | None = None,
            resolution: float | tuple[float, float] | None = None,
            geometries: Sequence[BaseGeometry] | None = None,
        ) -> xr.Dataset:
            grid = Grid.from_coords(data["lat"].values, data["lon"].values, resolution or GRID_DEGREES)
            geoms = list(geometries) if geometries is not None else sites.geometries(buffered=True)
            da = data["dis24"]
            if grid.key not in self._pixels:
                self._pixels[grid.key] = self._choose_pixels(grid, da, search, geoms)
            px = self._pixels[grid.key]
            ok = px["ilat"] >= 0
            n = len(geoms)
            values = np.full((n, da.sizes["time"]), np.nan)
            if ok.any():
                picked = da.isel(
                    lat=xr.DataArray(px["ilat"][ok], dims="s"), lon=xr.DataArray(px["ilon"][ok], dims="s")
                )
                values[ok] = picked.transpose("s", "time").values
            out = xr.Dataset(
                {"dis24": xr.DataArray(values, dims=("site", "time"), coords={"time": da["time"].values})},
                coords={"site": ("site", np.array(sites.ids, dtype=object))},
            )
            if "product_version" in data.coords:
                out = out.assign_coords(product_version=("time", data["product_version"].values))
            has = ok & np.isfinite(values).any(axis=1) if values.size else ok
            out["coverage"] = xr.DataArray(np.where(has, 1.0, 0.0), dims="site")
            out["covered"] = xr.DataArray(px["covered"], dims="site")
            out["extraction"] = xr.DataArray(
                np.where(px["covered"], np.where(ok, "river_pixel", "none"), "outside").astype(object),
                dims="site",
            )
            return out

        return reduce

    def _thresholds(self, lat: np.ndarray, lon: np.ndarray) -> dict[int, np.ndarray]:
        path = self.settings.glofas_thresholds_path
        if path is None:
            return {}
        found: dict[int, np.ndarray] = {}
        tol = GRID_DEGREES * 0.51
        ok = np.isfinite(lat)
        for f in iter_files(Path(path)):
            with open_normalised(f) as datasets:
                for ds in datasets:
                    for name in ds.data_vars:
                        period = _rl_period(str(name))
                        if period is None or int(period) not in RETURN_PERIODS or period != int(period):
                            continue
                        values = np.full(lat.size, np.nan)
                        values[ok] = _nearest(ds, str(name), lat[ok], lon[ok], tol)
                        found.setdefault(int(period), values)
        return found

    # .. fetch ..........................................................................................

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        self._pixels = {}
        if self.mode == "local":
            files = local_files(self.settings, SOURCE_ID)
            return self._cube(sites, start, end, files, [], newest_mtime(files), {}, DATASET)
        return self._remote(sites, start, end, self.requests(sites, start, end), DATASET)

    def fetch_forecast(self, sites: SiteSet, issued: datetime) -> xr.Dataset:
        """The control forecast issued at `issued` (00 UTC) as daily discharge over its 30 valid days from
        the issue day on, with `lead_days` and `issued` (remote mode only)."""
        if self.mode != "remote":
            raise SourceNotAvailableError(f"{SOURCE_ID}: forecasts are fetched in remote mode only")
        self._pixels = {}
        day = issued.date()
        last = day + timedelta(days=MAX_FORECAST_DAYS - 1)
        cube = self._remote(sites, day, last, self.forecast_requests(sites, day), FORECAST_DATASET)
        return as_forecast(cube, issued, FORECAST_DATASET)

    def _remote(self, sites: SiteSet, start: date, end: date, requests, product: str) -> xr.Dataset:
        deadline = Deadline(self.settings.cds_time_budget_seconds)
        owner: dict[str, np.ndarray] = {}
        raws = []
        for dataset, request, members in requests:
            raw = self._retrieve(dataset, request, deadline)
            owner[str(raw.path)] = members
            raws.append(raw)
        for raw in raws:
            label = raw.request.get("system_version", [""])
            kind = raw.request.get("product_type", [""])
            self._versions[str(raw.path)] = " ".join(
                str(x[0] if isinstance(x, list) else x) for x in (label, kind) if x
            )
        files = [r.path for r in raws]
        sent = [{"dataset": r.dataset, "request": r.request} for r in raws]
        retrieved = max(r.retrieved_at for r in raws) if raws else now_iso()
        return self._cube(sites, start, end, files, sent, retrieved, owner, product)

    def _cube(self, sites, start, end, files, sent, retrieved, owner, product: str) -> xr.Dataset:
        """The site cube of the files over [start, end], with river pixels and return-period thresholds."""
        geoms = sites.geometries(buffered=True)
        search = self._search_areas(sites)
        series = reduce_files(
            files,
            sites,
            geoms,
            window_of(start, end),
            self.prepare,
            mask_variable=lambda ds: "dis24",
            reducer=self._reducer(search),
            sites_of=lambda path: owner.get(str(path)),
        )
        daily = xr.Dataset()
        if series.has("dis24"):
            daily["dis24"] = daily_mean(series.data["dis24"], start, end)
        if "product_version" in series.data.coords:
            daily = daily.assign_coords(
                product_version=("time", daily_labels(series.data["product_version"], start, end))
            )
        dataset = sent[0]["dataset"] if sent else product
        cube = finish_cube(
            daily,
            sites,
            start,
            end,
            source_id=SOURCE_ID,
            product=dataset,
            stats=(series.coverage, series.covered, series.extraction),
            variables=VARIABLES,
            requests=sent,
            retrieved_at=retrieved,
            default_version="unknown (local files)" if self.mode == "local" else "",
            extra_attrs={"river_pixel_method": self._method or "no data"},
        )
        lat, lon, upstream = self._river_pixels(len(sites))
        cube["river_lat"] = xr.DataArray(lat, dims="site", attrs={"units": "degrees_north"})
        cube["river_lon"] = xr.DataArray(lon, dims="site", attrs={"units": "degrees_east"})
        cube["upstream_area"] = xr.DataArray(
            upstream,
            dims="site",
            attrs={"units": "km2", "long_name": "Upstream area of the site's river pixel"},
        )
        for period, values in sorted(self._thresholds(lat, lon).items()):
            cube[f"dis24_rp{period}"] = xr.DataArray(
                values.astype(np.float32),
                dims="site",
                attrs={
                    "units": "m3 s-1",
                    "long_name": f"{period}-year return-period discharge at the site's river pixel (GloFAS)",
                },
            )
        return cube


def build(settings: Settings, mode: str) -> Source:
    """The GloFAS source in `mode` (local or remote; demo gives the synthetic stand-in)."""
    if mode == "demo":
        return DemoSource(SOURCES[SOURCE_ID])
    return GlofasSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Whether the configured mode can work: local path readable, or EWDS reachable with licence accepted."""
    return check_source(settings, SOURCE_ID, EWDS, DATASET)
