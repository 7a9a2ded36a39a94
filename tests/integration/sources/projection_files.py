"""Small CORDEX- and CMIP6-format daily NetCDF files for the projections source tests.

CORDEX files are laid out as the EUR-11 files of the CDS: a rotated-pole grid (1-D ``rlat``/``rlon`` in
rotated degrees, 0.11° apart, 2-D ``lat``/``lon``, a ``rotated_pole`` grid-mapping variable with the EUR-11
pole at 39.25° N, 162° W), daily means stamped at 12:00 in the model's calendar, ESGF global attributes and
file names. CMIP6 files have a regular grid with longitudes 0…360. Values are deterministic functions of
(variable, experiment, cell, day) so tests read the expected numbers back from the file.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyproj
import xarray as xr

POLE = {
    "grid_mapping_name": "rotated_latitude_longitude",
    "grid_north_pole_latitude": 39.25,
    "grid_north_pole_longitude": -162.0,
    "north_pole_grid_longitude": 0.0,
}
#: Rotated coordinates of the first cell centre (south-west) and the grid size: cells around Rome.
RLON0, RLAT0, NRLON, NRLAT, STEP = -4.62, -9.02, 7, 5, 0.11
UNITS = {"tas": "K", "tasmin": "K", "tasmax": "K", "pr": "kg m-2 s-1", "hurs": "%", "huss": "1"}
CDS_NAMES = {
    "2m_air_temperature": "tas",
    "maximum_2m_temperature_in_the_last_24_hours": "tasmax",
    "minimum_2m_temperature_in_the_last_24_hours": "tasmin",
    "mean_precipitation_flux": "pr",
    "2m_relative_humidity": "hurs",
    "2m_surface_specific_humidity": "huss",
    "near_surface_air_temperature": "tas",
    "daily_maximum_near_surface_air_temperature": "tasmax",
    "daily_minimum_near_surface_air_temperature": "tasmin",
    "precipitation": "pr",
    "near_surface_relative_humidity": "hurs",
    "near_surface_specific_humidity": "huss",
}
EXPERIMENT_OFFSET = {"historical": 0.0, "rcp45": 1.0, "rcp85": 2.0, "ssp245": 1.0, "ssp585": 2.0}


def rotated_to_lonlat(rlon: np.ndarray, rlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geographic lon/lat of rotated coordinates on the EUR-11 pole."""
    crs = pyproj.CRS.from_cf(POLE)
    t = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return t.transform(rlon, rlat)


def cell_centre(j: int, i: int) -> tuple[float, float]:
    """(lon, lat) of the centre of cell (rlat index j, rlon index i) of the test grid."""
    lon, lat = rotated_to_lonlat(np.array([RLON0 + STEP * i]), np.array([RLAT0 + STEP * j]))
    return float(lon[0]), float(lat[0])


def _values(var: str, experiment: str, shape: tuple[int, int], times) -> np.ndarray:
    """Deterministic daily fields: a seasonal cycle, a gradient over cells, an experiment offset."""
    nt = len(times)
    doy = np.array([t.dayofyr for t in times], dtype=float)
    year = np.array([t.year for t in times], dtype=float)
    jj, ii = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    season = np.sin(2 * np.pi * doy / 365.0)[:, None, None]
    cells = (0.3 * jj + 0.07 * ii)[None, :, :]
    trend = (0.02 * (year - 2000) + EXPERIMENT_OFFSET.get(experiment, 0.0))[:, None, None]
    if var in ("tas", "tasmin", "tasmax"):
        shift = {"tas": 0.0, "tasmin": -4.0, "tasmax": 5.0}[var]
        return (287.0 + shift + 8.0 * season + cells + trend) * np.ones((nt, *shape))
    if var == "pr":
        return (2e-5 * (1.2 + season) * (1 + 0.1 * cells) * (1 + 0.05 * trend)) * np.ones((nt, *shape))
    if var == "hurs":
        return (70.0 - 10.0 * season + cells) * np.ones((nt, *shape))
    if var == "huss":
        return (0.008 + 0.003 * season + 0.0002 * cells) * np.ones((nt, *shape))
    raise ValueError(var)


def _times(first: int, last: int, calendar: str):
    end = f"{last:04d}-12-30" if calendar == "360_day" else f"{last:04d}-12-31"
    days = xr.date_range(f"{first:04d}-01-01", end, freq="D", calendar=calendar, use_cftime=True)
    return [t.replace(hour=12) for t in days]


def cordex_dataset(
    var: str,
    experiment: str,
    first: int,
    last: int,
    *,
    calendar: str = "360_day",
    gcm: str = "MPI-M-MPI-ESM-LR",
    institute: str = "SMHI",
    rcm: str = "RCA4",
    member: str = "r1i1p1",
) -> xr.Dataset:
    """A CORDEX EUR-11 daily file of one variable (experiment as ESGF spells it: historical, rcp45…)."""
    rlon = RLON0 + STEP * np.arange(NRLON)
    rlat = RLAT0 + STEP * np.arange(NRLAT)
    lon2, lat2 = rotated_to_lonlat(*np.meshgrid(rlon, rlat))
    times = _times(first, last, calendar)
    data = _values(var, experiment, (NRLAT, NRLON), times).astype(np.float32)
    ds = xr.Dataset(
        {
            var: (
                ("time", "rlat", "rlon"),
                data,
                {"units": UNITS[var], "grid_mapping": "rotated_pole", "coordinates": "lat lon"},
            ),
            "rotated_pole": ((), np.int32(0), dict(POLE)),
        },
        coords={
            "time": ("time", times, {"standard_name": "time"}),
            "rlat": ("rlat", rlat, {"units": "degrees", "standard_name": "grid_latitude"}),
            "rlon": ("rlon", rlon, {"units": "degrees", "standard_name": "grid_longitude"}),
            "lat": (("rlat", "rlon"), lat2, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("rlat", "rlon"), lon2, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "Conventions": "CF-1.4",
            "project_id": "CORDEX",
            "CORDEX_domain": "EUR-11",
            "institute_id": institute,
            "model_id": f"{institute}-{rcm}",
            "driving_model_id": gcm,
            "driving_experiment_name": experiment,
            "driving_model_ensemble_member": member,
            "experiment_id": experiment,
            "rcm_version_id": "v1a",
            "frequency": "day",
        },
    )
    ds["time"].encoding.update(units="days since 1949-12-01 00:00:00", calendar=calendar)
    return ds


def cordex_name(ds: xr.Dataset) -> str:
    """The ESGF file name of a CORDEX daily file."""
    var = next(v for v in ds.data_vars if v != "rotated_pole")
    a = ds.attrs
    t = ds["time"].values
    return (
        f"{var}_{a['CORDEX_domain']}_{a['driving_model_id']}_{a['experiment_id']}_"
        f"{a['driving_model_ensemble_member']}_{a['model_id']}_{a['rcm_version_id']}_day_"
        f"{t[0].year:04d}{t[0].month:02d}{t[0].day:02d}-{t[-1].year:04d}{t[-1].month:02d}{t[-1].day:02d}.nc"
    )


def cmip6_dataset(
    var: str,
    experiment: str,
    first: int,
    last: int,
    *,
    calendar: str = "standard",
    model: str = "MPI-ESM1-2-LR",
) -> xr.Dataset:
    """A CMIP6 daily file of one variable on a regular 1° grid with longitudes 0…360 (around Rome)."""
    lat = np.arange(38.5, 45.0, 1.0)
    lon = np.arange(8.5, 17.0, 1.0)  # 0..360 convention: also holds 358.5 etc. for western sites
    lon = np.concatenate([lon, [358.5, 359.5]])
    times = _times(first, last, calendar)
    data = _values(var, experiment, (lat.size, lon.size), times).astype(np.float32)
    ds = xr.Dataset(
        {var: (("time", "lat", "lon"), data, {"units": UNITS[var]})},
        coords={"time": ("time", times), "lat": ("lat", lat), "lon": ("lon", lon)},
        attrs={
            "source_id": model,
            "experiment_id": experiment,
            "variant_label": "r1i1p1f1",
            "mip_era": "CMIP6",
        },
    )
    ds["time"].encoding.update(units="days since 1850-01-01", calendar=calendar)
    return ds


def to_bytes(ds: xr.Dataset) -> bytes:
    """The NetCDF-4 bytes of a dataset."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.nc"
        ds.to_netcdf(path, engine="h5netcdf")
        return path.read_bytes()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A ZIP archive of named files, as the CDS sends them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


def esgf_experiment(cds: str) -> str:
    """``rcp_4_5`` → ``rcp45``, ``ssp2_4_5`` → ``ssp245``, ``historical`` unchanged."""
    return cds.replace("_", "") if cds != "historical" else cds
