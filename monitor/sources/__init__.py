"""Copernicus sources: one declaration each, and a factory that builds a source in its configured mode."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta

import xarray as xr

from monitor.settings import Settings
from monitor.sources.base import (
    ForecastSource,
    Source,
    SourceAuthError,
    SourceError,
    SourceInfo,
    SourceNotAvailableError,
    SourceRequestError,
    SourceUnavailableError,
)
from sites import SiteSet

C3S = "Generated using Copernicus Climate Change Service information {year}."
CAMS = "Generated using Copernicus Atmosphere Monitoring Service information {year}."
CEMS = "Contains modified Copernicus Emergency Management Service information {year}."
S2 = "Contains modified Copernicus Sentinel data {year}."
CLMS = "Copernicus Land Monitoring Service, European Union, {year}."

SOURCES: dict[str, SourceInfo] = {
    s.id: s
    for s in (
        SourceInfo(
            "era5_land",
            "C3S ERA5-Land",
            "climate",
            "reanalysis-era5-land",
            (
                "tas",
                "tasmin",
                "tasmax",
                "pr",
                "hurs",
                "sfcWind",
                "tas_noon",
                "hurs_noon",
                "sfcWind_noon",
                "pr_noon",
            ),
            C3S,
            latency_days=6,
        ),
        SourceInfo(
            "cams_europe",
            "CAMS European air quality",
            "atmosphere",
            "cams-europe-air-quality-reanalyses",
            ("so2", "no2", "o3", "pm10", "pm2p5"),
            CAMS,
            latency_days=2,
            forecast_product="cams-europe-air-quality-forecasts",
            forecast_days=4,
        ),
        SourceInfo(
            "sentinel2",
            "Sentinel-2 L2A statistics (Sentinel Hub)",
            "land",
            "sentinel-2-l2a",
            ("ndvi", "ndmi", "nbr", "valid_fraction", "dnbr_hist"),
            S2,
            latency_days=5,
        ),
        SourceInfo(
            "egms",
            "CLMS European Ground Motion Service",
            "land",
            "EGMS L2b/L3",
            (
                "ground_velocity_mean",
                "ground_velocity_min",
                "ground_velocity_max",
                "ground_velocity_differential",
                "ground_acceleration_mean",
                "egms_points",
            ),
            CLMS,
            latency_days=400,
            modes=("demo", "local"),
        ),
        SourceInfo(
            "clms_land",
            "CLMS CORINE Land Cover / HRL imperviousness",
            "land",
            "CLC / HRL IMD",
            (
                "imperviousness_mean",
                "imperviousness_mean_buffer",
                "clc_artificial_fraction",
                "clc_agricultural_fraction",
                "clc_forest_seminatural_fraction",
                "clc_wetlands_fraction",
                "clc_water_fraction",
            ),
            CLMS,
            latency_days=2000,
            modes=("demo", "local"),
        ),
        SourceInfo(
            "cems_fire",
            "CEMS fire danger indices",
            "emergency",
            "cems-fire-historical-v1",
            ("fwi",),
            CEMS,
            latency_days=6,
            # no fire-danger forecast request schema could be confirmed: forecasts in the demo only
            forecast_product="EFFIS fire danger forecast",
            forecast_days=10,
            forecast_modes=("demo",),
        ),
        SourceInfo(
            "glofas",
            "CEMS GloFAS river discharge",
            "emergency",
            "cems-glofas-historical",
            ("dis24", "dis24_rp2", "dis24_rp5", "dis24_rp20"),
            CEMS,
            latency_days=2,
            forecast_product="cems-glofas-forecast",
            forecast_days=30,
        ),
        SourceInfo(
            "ems_rapid_mapping",
            "CEMS Rapid Mapping activations",
            "emergency",
            "CEMS Rapid Mapping",
            ("ems_active", "ems_flooded_fraction"),
            CEMS,
            latency_days=1,
        ),
    )
}


def attribution(source_id: str, year: int | None = None) -> str:
    """The Copernicus licence attribution sentence of a source."""
    return SOURCES[source_id].attribution.format(year=year or datetime.now(UTC).year)


class DemoSource:
    """The deterministic synthetic generator, restricted to the variables of one source."""

    mode = "demo"

    def __init__(self, info: SourceInfo) -> None:
        self.info = info

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        from monitor.sources import synthetic, synthetic_land

        weather = [v for v in self.info.variables if v in synthetic.VARIABLES]
        land = [v for v in self.info.variables if v in synthetic_land.VARIABLES]
        parts = []
        if weather:
            cube = synthetic.generate(sites, start, end, weather)
            if any(v.endswith("_noon") for v in self.info.variables):
                cube = cube.assign(noon_from_daily(cube))
            parts.append(cube)
        if land:
            parts.append(synthetic_land.generate_land(sites, start, end, land))
        cube = (
            xr.merge(parts, join="outer", compat="override", combine_attrs="override")
            if len(parts) > 1
            else parts[0]
        )
        cube.attrs.update(
            source=self.info.id,
            product=f"synthetic stand-in for {self.info.product}",
            product_version=cube.attrs.get("product_version", "synthetic-1"),
            synthetic="true",
            attribution=cube.attrs.get(
                "attribution",
                "Synthetic data generated by Heritage Monitor for demonstration; not Copernicus data.",
            ),
        )
        cube["coverage"] = xr.DataArray([1.0] * len(sites), dims="site", coords={"site": cube.site})
        return cube

    def fetch_forecast(self, sites: SiteSet, issued: datetime) -> xr.Dataset:
        """The synthetic forecast issued at `issued`: `forecast_days` valid days from the issue day on, the
        synthetic truth plus an error growing with the lead, with the injected forecast events; per-site
        return-period discharges come along as in `fetch`."""
        from monitor.sources import synthetic, synthetic_land
        from monitor.sources.base import as_forecast

        if not self.info.forecast_days:
            raise SourceNotAvailableError(f"{self.info.id} has no forecast product")
        day = issued.date()
        last = day + timedelta(days=self.info.forecast_days - 1)
        weather = [v for v in self.info.variables if v in synthetic.VARIABLES]
        land = [v for v in self.info.variables if v in synthetic_land.VARIABLES]
        static = synthetic_land.generate_land(sites, day, last, land) if land else None
        references = {v: static[v].values[:, 0] for v in land} if static is not None else None
        cube = synthetic.forecast(sites, day, self.info.forecast_days, weather, references)
        if static is not None:
            cube = cube.assign({v: static[v] for v in land})
        cube["coverage"] = xr.DataArray([1.0] * len(sites), dims="site", coords={"site": cube.site})
        cube.attrs.update(
            source=self.info.id,
            product_version="synthetic-1",
            synthetic="true",
            attribution="Synthetic forecast generated by Heritage Monitor for demonstration; not Copernicus "
            "data.",
        )
        return as_forecast(cube, issued, f"synthetic stand-in for {self.info.forecast_product}")


def noon_from_daily(cube: xr.Dataset) -> dict[str, xr.DataArray]:
    """Synthetic local-noon weather for the Fire Weather Index, derived from the daily synthetic values.

    Noon is near the daily maximum temperature and minimum humidity; wind peaks in the afternoon. These
    are demo approximations only (real data take the hour nearest local noon from hourly ERA5-Land).
    """
    return {
        "tas_noon": (cube["tasmax"] - 1.0).assign_attrs(
            units="degC", long_name="Air temperature near local noon"
        ),
        "hurs_noon": (cube["hurs"] - 12.0)
        .clip(5, 100)
        .assign_attrs(units="%", long_name="Relative humidity near local noon"),
        "sfcWind_noon": (cube["sfcWind"] * 1.15).assign_attrs(
            units="m s-1", long_name="Wind speed near local noon"
        ),
        "pr_noon": cube["pr"].assign_attrs(
            units="mm d-1", long_name="Precipitation in the 24 h to local noon"
        ),
    }


def make_source(source_id: str, settings: Settings) -> Source:
    """The source in its configured mode; building it needs neither credentials nor the network."""
    if source_id not in SOURCES:
        raise SourceError(f"unknown source {source_id!r}; known: {', '.join(SOURCES)}")
    info = SOURCES[source_id]
    mode = settings.source_mode(source_id)
    if mode not in info.modes:
        raise SourceNotAvailableError(
            f"source {source_id!r} has no {mode!r} mode; modes: {', '.join(info.modes)}"
        )
    if mode == "demo":
        from monitor.sources import synthetic, synthetic_land

        if not set(info.variables) & (set(synthetic.VARIABLES) | set(synthetic_land.VARIABLES)):
            raise SourceNotAvailableError(f"the demo generator has no data for {source_id!r}")
        return DemoSource(info)
    return _module(source_id, mode).build(settings, mode)


def check_source(source_id: str, settings: Settings) -> dict:
    """What `sources check` reports for one source: mode, reachability, licence, message."""
    mode = settings.source_mode(source_id)
    if mode == "demo":
        try:
            make_source(source_id, settings)
        except SourceError as exc:
            return {"mode": mode, "reachable": None, "licence_accepted": None, "message": str(exc)}
        return {"mode": mode, "reachable": True, "licence_accepted": None, "message": "synthetic data"}
    try:
        return _module(source_id, mode).check(settings)
    except SourceError as exc:
        return {"mode": mode, "reachable": False, "licence_accepted": None, "message": str(exc)}


def _module(source_id: str, mode: str):
    """The module that implements the local and remote modes of a source."""
    try:
        return importlib.import_module(f"monitor.sources.{source_id}")
    except ModuleNotFoundError as exc:
        raise SourceNotAvailableError(f"source {source_id!r} has no {mode!r} reader installed") from exc


def forecast_capable(source: Source) -> bool:
    """Whether a built source fetches forecasts in its mode."""
    info = source.info
    return (
        bool(info.forecast_days) and source.mode in info.forecast_modes and isinstance(source, ForecastSource)
    )


def daily_sources() -> list[str]:
    """Sources that deliver daily variables (the ones the pipeline stores in the variable store)."""
    return [s.id for s in SOURCES.values() if s.variables]


__all__ = [
    "SOURCES",
    "DemoSource",
    "ForecastSource",
    "Source",
    "SourceAuthError",
    "SourceError",
    "SourceInfo",
    "SourceNotAvailableError",
    "SourceRequestError",
    "SourceUnavailableError",
    "attribution",
    "daily_sources",
    "forecast_capable",
    "make_source",
]
