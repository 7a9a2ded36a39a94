"""CAMS European air quality (ADS) → daily mean surface concentrations per site.

Remote mode asks the Atmosphere Data Store for ``cams-europe-air-quality-reanalyses`` (ensemble median,
surface level ``0``), one request per calendar month, as the ZIP of NetCDF files it delivers
(``data_format: netcdf_zip``). The type follows `HM_CAMS_EUROPE_TYPE`: in ``auto`` a month that ended
more than `HM_CAMS_EUROPE_VALIDATED_LAG_DAYS` ago is asked as ``validated_reanalysis`` (the validated
reanalysis lags about two years) and otherwise, or when the store refuses the validated request, as
``interim_reanalysis``. With ``analysis`` the hourly analyses of ``cams-europe-air-quality-forecasts``
(``type: analysis``, lead time 0) are used instead, for days the reanalyses do not reach yet.

Local mode reads the user's ADS downloads (ZIPs or NetCDF, one file per species or all in one) from
`HM_CAMS_EUROPE_PATH`. Variable names are accepted as the forecast product writes them (``so2_conc``,
``no2_conc``, ``o3_conc``, ``pm10_conc``, ``pm2p5_conc``) and bare (``so2``, ``pm2p5``…); dims
(time, level, latitude, longitude), the first (surface) level is used; concentrations in µg m-3 (kg m-3 is
converted). Forecast files keep their lead time: for each hour the shortest lead is used (`normalise`).

Forecasts (`fetch_forecast`, remote mode) come from ``cams-europe-air-quality-forecasts`` (``type:
forecast``, ensemble median, surface, base time 00:00 of the issue day, ``leadtime_hour`` 0 … 96), one
request per group of nearby sites: four valid days from the issue day on (the 97th hour alone cannot make
a day), averaged per UTC day with the same 18-hour rule. They are never stored as observed variables.

Each hourly field is reduced to the sites (area-weighted mean over the polygon+buffer, `monitor.extract`),
then averaged per UTC day; a day needs at least 18 of its 24 hours (the 75 % data-capture rule of Directive
2008/50/EC for daily values), else NaN. ``product_version`` is the reanalysis type (from the request, or
from the file name: ``vra`` validated, ``ira`` interim, as in ``cams.eaq.vra.ENSa.no2.l0.2019-01.nc``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from monitor.settings import Settings
from monitor.sources import SOURCES, DemoSource
from monitor.sources.base import Source, SourceNotAvailableError, SourceRequestError, as_forecast
from monitor.sources.cds_common import (
    ADS,
    CdsRetriever,
    Deadline,
    Raw,
    check_source,
    chunks,
    concat_daily,
    daily_labels,
    daily_mean,
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

SOURCE_ID = "cams_europe"
DATASET = "cams-europe-air-quality-reanalyses"
FORECAST_DATASET = "cams-europe-air-quality-forecasts"
GRID_DEGREES = 0.1
MIN_HOURS = 18
FORECAST_HOURS = 96

#: our name -> (ADS request name, names found in files)
SPECIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "so2": ("sulphur_dioxide", ("so2_conc", "so2")),
    "no2": ("nitrogen_dioxide", ("no2_conc", "no2")),
    "o3": ("ozone", ("o3_conc", "o3", "go3")),
    "pm10": ("particulate_matter_10um", ("pm10_conc", "pm10")),
    "pm2p5": ("particulate_matter_2.5um", ("pm2p5_conc", "pm2p5", "pm25_conc", "pm25")),
}

_STANDARD = {
    "so2": ("mass_concentration_of_sulfur_dioxide_in_air", "sulphur dioxide"),
    "no2": ("mass_concentration_of_nitrogen_dioxide_in_air", "nitrogen dioxide"),
    "o3": ("mass_concentration_of_ozone_in_air", "ozone"),
    "pm10": ("mass_concentration_of_pm10_ambient_aerosol_particles_in_air", "PM10"),
    "pm2p5": ("mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air", "PM2.5"),
}
VARIABLES: dict[str, dict[str, str]] = {
    name: {
        "units": "ug m-3",
        "standard_name": std,
        "long_name": f"Daily mean surface concentration of {label}",
        "cell_methods": "area: mean time: mean",
    }
    for name, (std, label) in _STANDARD.items()
}

_UG_UNITS = {"µg m-3", "µg/m3", "ug m-3", "ug/m3", "ug m**-3", "µg m**-3", "microgram m-3", "μg m-3", "μg/m3"}


def _to_ug(da: xr.DataArray) -> xr.DataArray:
    units = str(da.attrs.get("units", "µg m-3")).strip()
    if units in ("kg m-3", "kg m**-3", "kg/m3"):
        return da * 1e9
    if units not in _UG_UNITS:
        raise ValueError(f"{da.name}: unexpected units {units!r} (expected µg m-3)")
    return da


def version_from_name(path: Path, attrs: dict[str, Any]) -> str:
    """Reanalysis type of a local file, from its name or global attributes."""
    fields = ("source_file", "title", "type", "product")
    text = " ".join([path.name, *(str(attrs.get(f, "")) for f in fields)]).lower()
    if re.search(r"(^|[._\-\s])vra([._\-\s]|$)|validated", text):
        return "validated_reanalysis"
    if re.search(r"(^|[._\-\s])ira([._\-\s]|$)|interim", text):
        return "interim_reanalysis"
    if "forecast" in text or "analysis" in text:
        return "analysis"
    return ""


class CamsEuropeSource:
    """CAMS Europe air quality in local or remote mode (see the module docstring)."""

    info = SOURCES[SOURCE_ID]

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode not in ("local", "remote"):
            raise SourceNotAvailableError(f"{SOURCE_ID}: unknown mode {mode!r}")
        self.settings = settings
        self.mode = mode
        self.retriever = CdsRetriever(settings, SOURCE_ID, ADS) if mode == "remote" else None
        self._versions: dict[str, str] = {}

    # .. requests ......................................................................................

    def _type_for(self, year: int, month: int, days: list[int]) -> str:
        chosen = self.settings.cams_europe_type
        if chosen != "auto":
            return chosen
        month_end = date(year, month, days[-1])
        lag = (datetime.now(UTC).date() - month_end).days
        return (
            "validated_reanalysis"
            if lag > self.settings.cams_europe_validated_lag_days
            else "interim_reanalysis"
        )

    def requests(
        self, sites: SiteSet, start: date, end: date
    ) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(dataset, request, sites it serves) per calendar month and group of nearby sites (`tiles`)."""
        variables = sorted(v for v, _ in SPECIES.values())
        out = []
        for tile in tiles(sites.geometries(buffered=True), GRID_DEGREES, decimals=1):
            for year, month, days in month_spans(start, end):
                kind = self._type_for(year, month, days)
                if kind == "analysis":
                    first, last = date(year, month, days[0]), date(year, month, days[-1])
                    request = {
                        "variable": variables,
                        "model": ["ensemble"],
                        "level": ["0"],
                        "date": [f"{first.isoformat()}/{last.isoformat()}"],
                        "type": ["analysis"],
                        "time": [f"{h:02d}:00" for h in range(24)],
                        "leadtime_hour": ["0"],
                        "area": tile.area,
                        "data_format": "netcdf_zip",
                    }
                    out.append((FORECAST_DATASET, request, tile.sites))
                    continue
                request = {
                    "variable": variables,
                    "model": ["ensemble"],
                    "level": ["0"],
                    "type": [kind],
                    "year": [f"{year:04d}"],
                    "month": [f"{month:02d}"],
                    "area": tile.area,
                    "data_format": "netcdf_zip",
                }
                out.append((DATASET, request, tile.sites))
        return out

    def forecast_requests(self, sites: SiteSet, issued: date) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(dataset, request, sites it serves) of the forecast issued at 00 UTC on `issued`, lead times
        0 … `FORECAST_HOURS` h, per group of nearby sites."""
        variables = sorted(v for v, _ in SPECIES.values())
        day = issued.isoformat()
        return [
            (
                FORECAST_DATASET,
                {
                    "variable": variables,
                    "model": ["ensemble"],
                    "level": ["0"],
                    "date": [f"{day}/{day}"],
                    "type": ["forecast"],
                    "time": ["00:00"],
                    "leadtime_hour": [str(h) for h in range(FORECAST_HOURS + 1)],
                    "area": tile.area,
                    "data_format": "netcdf_zip",
                },
                tile.sites,
            )
            for tile in tiles(sites.geometries(buffered=True), GRID_DEGREES, decimals=1)
        ]

    def _retrieve(self, dataset: str, request: dict[str, Any], deadline: Deadline) -> Raw:
        assert self.retriever is not None
        try:
            return self.retriever.retrieve(dataset, request, deadline)
        except SourceRequestError:
            if self.settings.cams_europe_type != "auto" or request.get("type") != ["validated_reanalysis"]:
                raise
            interim = {**request, "type": ["interim_reanalysis"]}
            return self.retriever.retrieve(dataset, interim, deadline)

    # .. files ..........................................................................................

    def prepare(self, ds: xr.Dataset, path: Path) -> xr.Dataset | None:
        """Surface concentrations (µg m-3) of the species found in one normalised file."""
        found = {}
        for name, (_, candidates) in SPECIES.items():
            var = next((c for c in candidates if c in ds.data_vars), None)
            if var is None:
                continue
            da = ds[var]
            if "level" in da.dims:
                da = da.isel(level=0, drop=True)
            if "member" in da.dims:
                da = da.median("member", keep_attrs=True)
            extra = [d for d in da.dims if d not in ("time", "lat", "lon")]
            if extra:
                continue
            found[name] = _to_ug(da).assign_attrs(units="ug m-3")
        if not found:
            return None
        out = xr.Dataset(found)
        version = self._versions.get(str(path)) or version_from_name(path, dict(ds.attrs))
        if "lead" in ds.coords and version in ("", "analysis"):
            lead_h = ds["lead"].values.astype("timedelta64[h]").astype(int)
            labels = np.where(lead_h == 0, "analysis", "forecast").astype(object)
            return out.assign_coords(product_version=("time", labels))
        if version:
            out = out.assign_coords(
                product_version=("time", np.full(out.sizes["time"], version, dtype=object))
            )
        return out

    # .. fetch ..........................................................................................

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        if self.mode == "local":
            files = local_files(self.settings, SOURCE_ID)
            return self._cube(sites, start, end, files, [], newest_mtime(files), {})
        return self._remote(sites, start, end, self.requests(sites, start, end))

    def fetch_forecast(self, sites: SiteSet, issued: datetime) -> xr.Dataset:
        """The forecast issued at `issued` (00 UTC) as daily means of its four valid days from the issue day
        on, with `lead_days` and `issued` (remote mode only)."""
        if self.mode != "remote":
            raise SourceNotAvailableError(f"{SOURCE_ID}: forecasts are fetched in remote mode only")
        day = issued.date()
        last = day + timedelta(days=FORECAST_HOURS // 24 - 1)
        cube = self._remote(sites, day, last, self.forecast_requests(sites, day))
        return as_forecast(cube, issued, FORECAST_DATASET)

    def _remote(self, sites: SiteSet, start: date, end: date, requests) -> xr.Dataset:
        deadline = Deadline(self.settings.cds_time_budget_seconds)
        owner: dict[str, np.ndarray] = {}
        raws = []
        for dataset, request, members in requests:
            raw = self._retrieve(dataset, request, deadline)
            self._versions[str(raw.path)] = raw.request.get("type", [""])[0]
            owner[str(raw.path)] = members
            raws.append(raw)
        files = [r.path for r in raws]
        sent = [{"dataset": r.dataset, "request": r.request} for r in raws]
        retrieved = max(r.retrieved_at for r in raws) if raws else now_iso()
        return self._cube(sites, start, end, files, sent, retrieved, owner)

    def _cube(self, sites, start, end, files, sent, retrieved, owner) -> xr.Dataset:
        """The daily site cube of the files over [start, end]."""
        geoms = sites.geometries(buffered=True)
        periods = chunks(start, end)
        ranges = time_ranges(files) if len(periods) > 1 else None
        daily_parts, series_parts = [], []
        for first, last in periods:
            window = window_of(first, last)
            series = reduce_files(
                files if ranges is None else files_in(ranges, window),
                sites,
                geoms,
                window,
                self.prepare,
                mask_variable=lambda ds: next(iter(ds.data_vars), None),
                sites_of=lambda path: owner.get(str(path)),
            )
            daily = xr.Dataset(
                {
                    name: daily_mean(series.data[name], first, last, MIN_HOURS)
                    for name in SPECIES
                    if series.has(name)
                }
            )
            if "product_version" in series.data.coords:
                labels = daily_labels(series.data["product_version"], first, last)
                daily = daily.assign_coords(product_version=("time", labels))
            daily_parts.append(daily)
            series_parts.append(series)
        daily = concat_daily(daily_parts)
        missing = [name for name in SPECIES if name not in daily.data_vars]
        extra = {"daily_rule": f"mean of hourly values, at least {MIN_HOURS} of 24 hours"}
        if missing:
            extra["missing_inputs"] = ", ".join(missing)
        product = sent[0]["dataset"] if sent else DATASET
        return finish_cube(
            daily,
            sites,
            start,
            end,
            source_id=SOURCE_ID,
            product=product,
            stats=merge_stats(series_parts),
            variables=VARIABLES,
            requests=sent,
            retrieved_at=retrieved,
            default_version="unknown (local files)" if self.mode == "local" else "",
            extra_attrs=extra,
        )


def build(settings: Settings, mode: str) -> Source:
    """The CAMS Europe source in `mode` (local or remote; demo gives the synthetic stand-in)."""
    if mode == "demo":
        return DemoSource(SOURCES[SOURCE_ID])
    return CamsEuropeSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    """Whether the configured mode can work: local path readable, or ADS reachable with licence accepted."""
    dataset = FORECAST_DATASET if settings.cams_europe_type == "analysis" else DATASET
    return check_source(settings, SOURCE_ID, ADS, dataset)


__all__ = ["DATASET", "FORECAST_DATASET", "CamsEuropeSource", "build", "check"]
