"""Files in the formats the data stores deliver, made from a request, with values simple enough to check.

- ERA5-Land (`reanalysis-era5-land`, new CDS NetCDF): a ZIP holding ``data_stream-oper_stepType-instant.nc``
  (t2m, d2m, u10, v10) and ``data_stream-oper_stepType-accum.nc`` (tp), dims (valid_time, latitude,
  longitude), scalar ``number``, ``expver`` on valid_time. t2m = 10 °C + hour/2, d2m = t2m − 5 K, u10 = 3,
  v10 = 4 m/s; tp accumulated since 00 UTC at 0.1·day-of-month mm per hour (00 UTC closes the previous day);
  cells west of `coast_lon` are sea (NaN).
- CAMS Europe reanalysis: a ZIP with one NetCDF per species, ``cams.eaq.vra.ENSa.<sp>.l0.<YYYY-MM>.nc``,
  variable ``<sp>_conc`` (time, level, latitude, longitude) in µg m-3, longitudes 0…360 (wrapping at 0),
  value = species base + hour of day.
- CEMS fire (`cems-fire-historical-v1`): ``fwinx`` (valid_time, latitude, longitude), longitudes 0…360,
  value = day of month.
- GloFAS (`cems-glofas-historical`): ``dis24`` (valid_time, latitude, longitude) on the 0.05° grid, the value
  of day D stamped D+1 00 UTC with ``forecast_period`` 24 h; a river along one row whose discharge grows
  eastwards, plus a "reservoir" cell of large discharge but small upstream area (see `glofas_network`).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _axis(first: float, last: float, step: float) -> np.ndarray:
    n = round((last - first) / step) + 1
    return np.round(first + step * np.arange(n), 4)


def to_bytes(ds: xr.Dataset, fmt: str = "NETCDF4") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.nc"
        ds.to_netcdf(path, format=fmt)
        return path.read_bytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# --- ERA5-Land -------------------------------------------------------------------------------------


def rate_mm_per_hour(day: date) -> float:
    return 0.1 * day.day


def era5_land(
    inputs: dict[str, Any], coast_lon: float = -999.0, preliminary_from: date | None = None
) -> bytes:
    n, w, s, e = inputs["area"]
    lat = _axis(n, s, -0.1)
    lon = _axis(w, e, 0.1)
    year, month = int(_as_list(inputs["year"])[0]), int(_as_list(inputs["month"])[0])
    stamps = [
        pd.Timestamp(year, month, int(d), int(t[:2]))
        for d in _as_list(inputs["day"])
        for t in _as_list(inputs["time"])
    ]
    vt = pd.DatetimeIndex(stamps)
    hours = vt.hour.to_numpy().astype(float)
    shape = (vt.size, lat.size, lon.size)
    sea = np.broadcast_to(lon[None, None, :] < coast_lon, shape)

    def field(values: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(values[:, None, None], shape).astype(np.float32).copy()
        out[sea] = np.nan
        return out

    t2m = 273.15 + 10.0 + hours / 2.0
    acc = np.array(
        [
            (24 if ts.hour == 0 else ts.hour)
            * rate_mm_per_hour((ts - pd.Timedelta(hours=1)).date() if ts.hour == 0 else ts.date())
            / 1000.0
            for ts in vt
        ]
    )
    expver = np.array(
        ["0005" if preliminary_from is not None and ts.date() >= preliminary_from else "0001" for ts in vt],
        dtype=object,
    )
    coords = {
        "valid_time": ("valid_time", vt.to_numpy(), {"standard_name": "time", "long_name": "time"}),
        "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        "number": ((), 0, {"long_name": "ensemble member numerical id"}),
        "expver": ("valid_time", expver, {"long_name": "model experiment version"}),
    }
    dims = ("valid_time", "latitude", "longitude")
    attrs = {
        "GRIB_centre": "ecmf",
        "Conventions": "CF-1.7",
        "institution": "European Centre for Medium-Range Weather Forecasts",
    }
    instant = xr.Dataset(
        {
            "t2m": (
                dims,
                field(t2m),
                {"units": "K", "long_name": "2 metre temperature", "GRIB_stepType": "instant"},
            ),
            "d2m": (dims, field(t2m - 5.0), {"units": "K", "long_name": "2 metre dewpoint temperature"}),
            "u10": (
                dims,
                field(np.full(vt.size, 3.0)),
                {"units": "m s**-1", "long_name": "10 metre U wind component"},
            ),
            "v10": (
                dims,
                field(np.full(vt.size, 4.0)),
                {"units": "m s**-1", "long_name": "10 metre V wind component"},
            ),
        },
        coords=coords,
        attrs=attrs,
    )
    accum = xr.Dataset(
        {
            "tp": (
                dims,
                field(acc),
                {"units": "m", "long_name": "Total precipitation", "GRIB_stepType": "accum"},
            )
        },
        coords=coords,
        attrs=attrs,
    )
    return zip_bytes(
        {
            "data_stream-oper_stepType-instant.nc": to_bytes(instant),
            "data_stream-oper_stepType-accum.nc": to_bytes(accum),
        }
    )


# --- CAMS Europe -----------------------------------------------------------------------------------

CAMS_BASE = {"so2": 2.0, "no2": 20.0, "o3": 60.0, "pm10": 25.0, "pm2p5": 12.0}
CAMS_REQUEST_NAMES = {
    "sulphur_dioxide": "so2",
    "nitrogen_dioxide": "no2",
    "ozone": "o3",
    "particulate_matter_10um": "pm10",
    "particulate_matter_2.5um": "pm2p5",
}


def cams_month(
    year: int, month: int, area: list[float], species: list[str], kind: str = "vra", bare: bool = False
) -> bytes:
    n, w, s, e = area
    lat = _axis(n, s, -0.1)
    lon = _axis(w, e, 0.1) % 360.0
    first = pd.Timestamp(year, month, 1)
    times = pd.date_range(first, first + pd.offsets.MonthEnd(0) + pd.Timedelta(hours=23), freq="h")
    members = {}
    for sp in species:
        values = CAMS_BASE[sp] + times.hour.to_numpy().astype(np.float32)
        data = np.broadcast_to(values[:, None, None, None], (times.size, 1, lat.size, lon.size)).astype(
            np.float32
        )
        name = sp if bare else f"{sp}_conc"
        ds = xr.Dataset(
            {name: (("time", "level", "latitude", "longitude"), data, {"units": "µg m-3", "species": sp})},
            coords={
                "time": ("time", times.to_numpy()),
                "level": ("level", np.array([0.0], dtype=np.float32), {"units": "m"}),
                "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"}),
            },
            attrs={
                "title": f"{sp} Air Pollutant REANALYSIS at the Surface",
                "institution": "Data produced by Meteo France",
            },
        )
        members[f"cams.eaq.{kind}.ENSa.{sp}.l0.{year:04d}-{month:02d}.nc"] = to_bytes(ds)
    return zip_bytes(members)


def cams_europe(inputs: dict[str, Any]) -> bytes:
    species = [CAMS_REQUEST_NAMES[v] for v in _as_list(inputs["variable"])]
    kind = "vra" if _as_list(inputs["type"])[0] == "validated_reanalysis" else "ira"
    return cams_month(
        int(_as_list(inputs["year"])[0]), int(_as_list(inputs["month"])[0]), inputs["area"], species, kind
    )


# --- CEMS fire -------------------------------------------------------------------------------------


def cems_fire(inputs: dict[str, Any]) -> bytes:
    n, w, s, e = inputs["area"]
    lat = _axis(n, s, -0.25)
    lon = _axis(w, e, 0.25) % 360.0
    year, month = int(_as_list(inputs["year"])[0]), int(_as_list(inputs["month"])[0])
    days = [date(year, month, int(d)) for d in _as_list(inputs["day"])]
    vt = pd.DatetimeIndex([pd.Timestamp(d) for d in days])
    values = np.array([d.day for d in days], dtype=np.float32)
    data = np.broadcast_to(values[:, None, None], (vt.size, lat.size, lon.size)).astype(np.float32)
    ds = xr.Dataset(
        {
            "fwinx": (
                ("valid_time", "latitude", "longitude"),
                data,
                {"units": "Numeric", "long_name": "Fire weather index"},
            )
        },
        coords={
            "valid_time": ("valid_time", vt.to_numpy()),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
            "number": ((), 0),
            "surface": ((), 0.0),
        },
        attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7"},
    )
    return to_bytes(ds)


# --- GloFAS ----------------------------------------------------------------------------------------


def glofas_network(lat: np.ndarray, lon: np.ndarray, river_lat: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean discharge m3/s, upstream area m²) on the grid: a river along the row nearest `river_lat`
    growing eastwards, hillslopes elsewhere, and one reservoir-like cell two rows north of the river's
    middle with the largest discharge but a small upstream area."""
    q = np.full((lat.size, lon.size), 0.5)
    up = np.full((lat.size, lon.size), 2.0e6)
    r = int(np.argmin(np.abs(lat - river_lat)))
    q[r, :] = 10.0 + 5.0 * np.arange(lon.size)
    up[r, :] = (100.0 + 50.0 * np.arange(lon.size)) * 1e6
    mid = lon.size // 2
    q[max(r - 2, 0), mid] = 5000.0
    up[max(r - 2, 0), mid] = 3.0e6
    return q, up


def glofas_grid(area: list[float]) -> tuple[np.ndarray, np.ndarray]:
    n, w, s, e = area
    return _axis(n - 0.025, s + 0.025, -0.05), _axis(w + 0.025, e - 0.025, 0.05)


def glofas_dataset(
    days: list[date], area: list[float], river_lat: float, with_lead: bool = True
) -> xr.Dataset:
    lat, lon = glofas_grid(area)
    q, _ = glofas_network(lat, lon, river_lat)
    factor = np.array([1.0 + d.day / 10.0 for d in days])
    data = (q[None, :, :] * factor[:, None, None]).astype(np.float32)
    if with_lead:
        vt = pd.DatetimeIndex([pd.Timestamp(d + timedelta(days=1)) for d in days])
        coords: dict[str, Any] = {
            "valid_time": ("valid_time", vt.to_numpy()),
            "forecast_period": ((), np.timedelta64(24, "h")),
            "forecast_reference_time": ("valid_time", (vt - pd.Timedelta(hours=24)).to_numpy()),
        }
        dim = "valid_time"
    else:
        coords = {"time": ("time", pd.DatetimeIndex([pd.Timestamp(d) for d in days]).to_numpy())}
        dim = "time"
    coords.update(
        {
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon % 360.0, {"units": "degrees_east"}),
        }
    )
    return xr.Dataset(
        {
            "dis24": (
                (dim, "latitude", "longitude"),
                data,
                {"units": "m**3 s**-1", "long_name": "Mean discharge in the last 24 hours"},
            )
        },
        coords=coords,
    )


def glofas(inputs: dict[str, Any], river_lat: float) -> bytes:
    y = _as_list(inputs.get("hyear", inputs.get("year")))[0]
    m = _as_list(inputs.get("hmonth", inputs.get("month")))[0]
    days = [date(int(y), int(m), int(d)) for d in _as_list(inputs.get("hday", inputs.get("day")))]
    return to_bytes(glofas_dataset(days, inputs["area"], river_lat))


def glofas_static(area: list[float], river_lat: float) -> tuple[xr.Dataset, dict[float, xr.Dataset]]:
    """The upstream-area map and return-period threshold files for the same network (lat/lon names, as the
    GloFAS auxiliary files)."""
    lat, lon = glofas_grid(area)
    q, up = glofas_network(lat, lon, river_lat)
    coords = {"lat": ("lat", lat), "lon": ("lon", lon)}
    uparea = xr.Dataset({"uparea": (("lat", "lon"), up, {"units": "m2"})}, coords=coords)
    thresholds = {
        rp: xr.Dataset(
            {f"rl_{rp:.1f}": (("lat", "lon"), q * (1.0 + rp / 10.0), {"units": "m3 s-1"})}, coords=coords
        )
        for rp in (2.0, 5.0, 20.0)
    }
    return uparea, thresholds


def glofas_forecast(inputs: dict[str, Any], river_lat: float) -> bytes:
    """A control forecast: ``dis24`` (forecast_period, latitude, longitude), scalar reference time, the value
    of lead L the mean of the 24 h ending at issue + L (day issue + L − 24 h gets factor 1 + day/10)."""
    issue = pd.Timestamp(
        int(_as_list(inputs["year"])[0]), int(_as_list(inputs["month"])[0]), int(_as_list(inputs["day"])[0])
    )
    leads = pd.to_timedelta([int(h) for h in _as_list(inputs["leadtime_hour"])], unit="h")
    lat, lon = glofas_grid(inputs["area"])
    q, _ = glofas_network(lat, lon, river_lat)
    days = [(issue + lead - pd.Timedelta(hours=24)).date() for lead in leads]
    factor = np.array([1.0 + d.day / 10.0 for d in days])
    data = (q[None, :, :] * factor[:, None, None]).astype(np.float32)
    ds = xr.Dataset(
        {"dis24": (("forecast_period", "latitude", "longitude"), data, {"units": "m**3 s**-1"})},
        coords={
            "forecast_period": ("forecast_period", leads.to_numpy()),
            "forecast_reference_time": ((), issue.to_datetime64()),
            "valid_time": ("forecast_period", (issue + leads).to_numpy()),
            "latitude": ("latitude", lat),
            "longitude": ("longitude", lon),
        },
    )
    return to_bytes(ds)
