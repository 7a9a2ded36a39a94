"""CEMS fire danger (EWDS) → daily Canadian Fire Weather Index per site.

Remote mode asks the Early Warning Data Store for ``cems-fire-historical-v1`` (``product_type:
reanalysis``, ``variable: fire_weather_index``, ``system_version: 4_1``), one request per calendar month,
on the regular 0.25° grid (``grid: 0.25/0.25`` — asking the original grid together with an ``area`` is
refused with HTTP 400) over the sites' buffered bounds padded by one cell, NetCDF. The consolidated dataset
is asked first; when the store refuses it (recent months are only in the intermediate dataset) the
``intermediate_dataset`` is asked instead.

Local mode reads the user's downloads from `HM_CEMS_FIRE_PATH`: CEMS NetCDF/GRIB (variable ``fwinx``,
``valid_time``, longitudes 0…360, sometimes a ZIP saved as ``.nc``) and the GEFF-ERA5 files of the older
``cems-fire-historical`` dataset (variable ``index`` on (lon, lat, time, realization)). For ensemble files
`HM_CEMS_FIRE_ENSEMBLE` chooses member 0, the unperturbed control run closest to the deterministic
reanalysis (default: an ensemble mean would smooth the very peaks a danger index is read for), or the
ensemble mean. GEFF-ERA5 ensemble files of a single cell carry no grid spacing; their cells are taken as
0.5° (the ERA5 ensemble grid the GEFF-ERA5 ensemble was computed on), other single-cell files as 0.25°.

The daily index is reduced to each site as the area-weighted mean of the cells under its polygon+buffer
(`monitor.extract`); a value stamped at any hour of a UTC day belongs to that day.

Forecasts: EFFIS publishes fire-danger forecasts, but the request schema of a fire-danger forecast dataset
on the EWDS could not be confirmed, so this client asks none. Fire-danger forecast alerts come from the
demo's synthetic forecasts only; with real data, fire alerts are observed alerts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from monitor.settings import Settings
from monitor.sources import SOURCES, DemoSource
from monitor.sources.base import Source, SourceNotAvailableError, SourceRequestError
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
from sites import SiteSet

SOURCE_ID = "cems_fire"
DATASET = "cems-fire-historical-v1"
GRID_DEGREES = 0.25
GEFF_ENSEMBLE_DEGREES = 0.5
SYSTEM_VERSION = "4_1"
FILE_VARIABLES = ("fwinx", "fwi", "index")

VARIABLES: dict[str, dict[str, str]] = {
    "fwi": {
        "units": "1",
        "long_name": "Canadian Fire Weather Index (CEMS fire danger reanalysis)",
        "cell_methods": "area: mean",
    }
}


class CemsFireSource:
    """CEMS fire danger in local or remote mode (see the module docstring)."""

    info = SOURCES[SOURCE_ID]

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"{SOURCE_ID}: unknown mode {mode!r}")
        self.settings = settings
        self.mode = mode
        self.retriever = CdsRetriever(settings, SOURCE_ID, EWDS) if mode == "remote" else None
        self._versions: dict[str, str] = {}

    def requests(self, sites: SiteSet, start: date, end: date) -> list[tuple[dict[str, Any], np.ndarray]]:
        """(consolidated-dataset request, sites it serves) per calendar month and group of nearby sites."""
        out = []
        for tile in tiles(sites.geometries(buffered=True), GRID_DEGREES):
            for year, month, days in month_spans(start, end):
                request = {
                    "product_type": "reanalysis",
                    "variable": ["fire_weather_index"],
                    "dataset_type": "consolidated_dataset",
                    "system_version": [SYSTEM_VERSION],
                    "year": [f"{year:04d}"],
                    "month": [f"{month:02d}"],
                    "day": [f"{d:02d}" for d in days],
                    "grid": "0.25/0.25",
                    "area": tile.area,
                    "data_format": "netcdf",
                }
                out.append((request, tile.sites))
        return out

    def _retrieve(self, request: dict[str, Any], deadline: Deadline) -> Raw:
        assert self.retriever is not None
        try:
            return self.retriever.retrieve(DATASET, request, deadline)
        except SourceRequestError:
            if request.get("dataset_type") != "consolidated_dataset":
                raise
            return self.retriever.retrieve(
                DATASET, {**request, "dataset_type": "intermediate_dataset"}, deadline
            )

    def prepare(self, ds: xr.Dataset, path: Path) -> xr.Dataset | None:
        """The daily FWI of one normalised file (ensemble reduced), stamped at 00 UTC of its day."""
        var = next((v for v in FILE_VARIABLES if v in ds.data_vars), None)
        if var is None or not {"lat", "lon", "time"} <= set(ds[var].dims):
            return None
        da = ds[var]
        version = self._versions.get(str(path), "")
        if "member" in da.dims:
            if self.settings.cems_fire_ensemble == "mean":
                da = da.mean("member", keep_attrs=True)
                member = "ensemble mean"
            else:
                da = da.isel(member=0, drop=True)
                member = "member 0 (control)"
            source = str(ds[var].attrs.get("source", "")) or "ensemble"
            version = version or f"{source} {member}"
        elif not version:
            version = str(ds.attrs.get("product_version") or ds.attrs.get("source") or "")
        da = da.transpose("time", "lat", "lon")
        out = xr.Dataset({"fwi": da.assign_attrs(units="1")})
        out.attrs["grid_degrees"] = GEFF_ENSEMBLE_DEGREES if "member" in ds.dims else GRID_DEGREES
        if version:
            out = out.assign_coords(
                product_version=("time", np.full(out.sizes["time"], version, dtype=object))
            )
        return out

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        geoms = sites.geometries(buffered=True)
        owner: dict[str, np.ndarray] = {}
        if self.mode == "local":
            files = local_files(self.settings, SOURCE_ID)
            sent: list[dict[str, Any]] = []
            retrieved = newest_mtime(files)
        else:
            deadline = Deadline(self.settings.cds_time_budget_seconds)
            raws = []
            for request, members in self.requests(sites, start, end):
                raw = self._retrieve(request, deadline)
                self._versions[str(raw.path)] = f"{raw.request['dataset_type']} {SYSTEM_VERSION}"
                owner[str(raw.path)] = members
                raws.append(raw)
            files = [r.path for r in raws]
            sent = [{"dataset": r.dataset, "request": r.request} for r in raws]
            retrieved = max(r.retrieved_at for r in raws) if raws else now_iso()

        series = reduce_files(
            files,
            sites,
            geoms,
            window_of(start, end),
            self.prepare,
            mask_variable=lambda ds: "fwi",
            sites_of=lambda path: owner.get(str(path)),
        )
        daily = xr.Dataset()
        if series.has("fwi"):
            daily["fwi"] = daily_mean(series.data["fwi"], start, end)
        if "product_version" in series.data.coords:
            daily = daily.assign_coords(
                product_version=("time", daily_labels(series.data["product_version"], start, end))
            )
        return finish_cube(
            daily,
            sites,
            start,
            end,
            source_id=SOURCE_ID,
            product=DATASET,
            stats=(series.coverage, series.covered, series.extraction),
            variables=VARIABLES,
            requests=sent,
            retrieved_at=retrieved,
            default_version="unknown (local files)" if self.mode == "local" else "",
            extra_attrs={"ensemble": self.settings.cems_fire_ensemble},
        )


def build(settings: Settings, mode: str) -> Source:
    """The CEMS fire source in `mode` (local or remote; demo gives the synthetic stand-in)."""
    if mode == "demo":
        return DemoSource(SOURCES[SOURCE_ID])
    return CemsFireSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Whether the configured mode can work: local path readable, or EWDS reachable with licence accepted."""
    return check_source(settings, SOURCE_ID, EWDS, DATASET)


__all__ = ["DATASET", "CemsFireSource", "build", "check"]
