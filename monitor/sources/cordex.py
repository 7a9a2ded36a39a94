"""Climate-model files (CORDEX, CMIP6) → daily site series: opening in the model's calendar, file-name
conventions, and extraction on rotated-pole and regular lon/lat grids.

Files are opened with cftime dates (``use_cftime``), so a ``360_day`` or ``noleap`` model keeps its own
calendar; every time stamp is moved to 00:00 of its day (CORDEX daily means are stamped at 12:00).

Extraction reuses `monitor.extract.reduce_to_sites` (exact polygon–cell overlaps, cell-area weights) for
both grid kinds, vectorised over all sites:

- a CORDEX rotated-pole grid (1-D ``rlat``/``rlon``, 2-D ``lat``/``lon``, a ``rotated_latitude_longitude``
  grid mapping) is regular in rotated degrees: the site polygons (grown by their buffers) are transformed
  into the rotated system with pyproj (the CRS from the grid mapping, `pyproj.CRS.from_cf`) and reduced
  there. The cell-area weight cos(rlat) is the true relative area of a rotated cell. A polygon smaller
  than a cell (most heritage sites against the ~12 km EUR-11 cells) takes the value of the cell it falls in;
- a regular lon/lat grid (CMIP6), longitudes 0…360 turned to −180…180; a grid whose spacing is not
  regular (Gaussian latitudes) falls back to the nearest cell centre of each site's representative point.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.extract import reduce_to_sites
from monitor.sources.normalise import file_kind, unpack_zip
from sites import SiteSet

__all__ = [
    "FileName",
    "floor_days",
    "model_calendar",
    "open_model_file",
    "parse_file_name",
    "reduce_model_grid",
    "rotated_crs",
]

#: Days reduced at a time (bounds memory: days × the sites' bounding box of cells).
TIME_BLOCK = 366


# --- opening ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_model_file(path: Path) -> Iterator[list[tuple[str, xr.Dataset]]]:
    """(member name, dataset) of each NetCDF in `path` (itself, or the members of a ZIP), opened lazily with
    cftime dates in the file's calendar and closed on exit."""
    kind = file_kind(path)
    if kind not in ("netcdf", "zip"):
        raise ValueError(f"{Path(path).name}: not a NetCDF or ZIP file")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with contextlib.ExitStack() as stack:
        out: list[tuple[str, xr.Dataset]] = []
        if kind == "zip":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hm-proj-")))
            for name, target in unpack_zip(path, tmp):
                if file_kind(target) == "netcdf":
                    ds = xr.open_dataset(target, decode_times=coder, decode_timedelta=False)
                    stack.callback(ds.close)
                    out.append((name, ds))
        else:
            ds = xr.open_dataset(path, decode_times=coder, decode_timedelta=False)
            stack.callback(ds.close)
            out.append((Path(path).name, ds))
        yield out


def model_calendar(ds: xr.Dataset) -> str:
    """The CF calendar of the dataset's time axis (``gregorian`` reported as ``standard``)."""
    cal = ds["time"].encoding.get("calendar") or ds["time"].attrs.get("calendar")
    if cal is None and ds.sizes.get("time"):
        cal = getattr(ds["time"].values[0], "calendar", None)
    cal = str(cal or "standard").lower()
    return "standard" if cal in ("gregorian", "proleptic_gregorian_standard") else cal


def floor_days(times: np.ndarray | Sequence) -> np.ndarray:
    """cftime dates moved to 00:00 of their day, in their own calendar."""
    return np.asarray(xr.CFTimeIndex(np.asarray(times)).floor("D"), dtype=object)


# --- file names ----------------------------------------------------------------------------------------

_CORDEX = re.compile(
    r"^(?P<var>[A-Za-z0-9]+)_(?P<domain>[A-Z]{3}-\d{2}[a-z]?)_(?P<gcm>[\w.\-]+?)_(?P<exp>historical|rcp\d{2})_"
    r"(?P<member>r\d+i\d+p\d+)_(?P<rcm>[\w.\-]+?)_(?P<version>v\d+\w*)_(?P<freq>day)_"
    r"(?P<start>\d{8})(?:\d{2})?-(?P<end>\d{8})(?:\d{2})?\.nc$"
)
_CMIP6 = re.compile(
    r"^(?P<var>[A-Za-z0-9]+)_(?P<freq>day)_(?P<model>[\w.\-]+?)_(?P<exp>historical|ssp\d{3})_"
    r"(?P<member>r\d+i\d+p\d+f\d+)_(?P<grid>g\w+)_(?P<start>\d{8})-(?P<end>\d{8})\.nc$"
)


@dataclass(frozen=True)
class FileName:
    """What a model file's name says: dataset, model (CDS spelling), experiment (CDS spelling), member,
    variable, and its first and last year."""

    dataset: str
    model: str
    experiment: str
    member: str
    variable: str
    first_year: int
    last_year: int


def cds_name(name: str) -> str:
    """An ESGF model or institute name in the CDS spelling: ``MPI-M-MPI-ESM-LR`` → ``mpi_m_mpi_esm_lr``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def cds_experiment(name: str) -> str:
    """An ESGF experiment id in the CDS spelling: ``rcp45`` → ``rcp_4_5``, ``ssp245`` → ``ssp2_4_5``."""
    name = name.lower()
    m = re.fullmatch(r"rcp(\d)(\d)", name)
    if m:
        return f"rcp_{m.group(1)}_{m.group(2)}"
    m = re.fullmatch(r"ssp(\d)(\d)(\d)", name)
    if m:
        return f"ssp{m.group(1)}_{m.group(2)}_{m.group(3)}"
    return name


def parse_file_name(name: str) -> FileName | None:
    """The facts in a CORDEX (``tas_EUR-11_MPI-M-MPI-ESM-LR_rcp45_r1i1p1_SMHI-RCA4_v1a_day_20060101-
    20101231.nc``) or CMIP6 (``tas_day_MPI-ESM1-2-LR_ssp245_r1i1p1f1_gn_20150101-20341231.nc``) daily file
    name, or None when it follows neither convention."""
    m = _CORDEX.match(name)
    if m:
        return FileName(
            "cordex",
            f"{cds_name(m['gcm'])}/{cds_name(m['rcm'])}",
            cds_experiment(m["exp"]),
            m["member"],
            m["var"],
            int(m["start"][:4]),
            int(m["end"][:4]),
        )
    m = _CMIP6.match(name)
    if m:
        return FileName(
            "cmip6",
            cds_name(m["model"]),
            cds_experiment(m["exp"]),
            m["member"],
            m["var"],
            int(m["start"][:4]),
            int(m["end"][:4]),
        )
    return None


def describe_dataset(ds: xr.Dataset, variables: Sequence[str]) -> FileName | None:
    """The same facts from a file's global attributes (CORDEX: ``driving_model_id``, ``model_id``,
    ``experiment_id``, ``driving_model_ensemble_member``; CMIP6: ``source_id``, ``experiment_id``,
    ``variant_label``) and its time axis, for files whose names say nothing."""
    a = ds.attrs
    var = next((v for v in variables if v in ds.data_vars), None)
    if var is None or "time" not in ds.dims or not ds.sizes["time"] or "experiment_id" not in a:
        return None
    years = [t.year for t in (ds["time"].values[0], ds["time"].values[-1])]
    if a.get("driving_model_id") and a.get("model_id"):
        gcm, rcm = cds_name(str(a["driving_model_id"])), cds_name(str(a["model_id"]))
        if a.get("institute_id") and not rcm.startswith(cds_name(str(a["institute_id"]))):
            rcm = f"{cds_name(str(a['institute_id']))}_{rcm}"
        member = str(a.get("driving_model_ensemble_member", "r1i1p1"))
        return FileName(
            "cordex", f"{gcm}/{rcm}", cds_experiment(str(a["experiment_id"])), member, var, *years
        )
    if a.get("source_id"):
        member = str(a.get("variant_label", "r1i1p1f1"))
        return FileName(
            "cmip6",
            cds_name(str(a["source_id"])),
            cds_experiment(str(a["experiment_id"])),
            member,
            var,
            *years,
        )
    return None


# --- grids -------------------------------------------------------------------------------------------------


def rotated_crs(ds: xr.Dataset, variable: str | None = None):
    """The pyproj CRS of the dataset's rotated-pole grid mapping, or None for other grids."""
    from pyproj import CRS

    names = []
    if variable is not None and ds[variable].attrs.get("grid_mapping"):
        names.append(str(ds[variable].attrs["grid_mapping"]))
    names += [str(v) for v in ds.variables if ds[v].attrs.get("grid_mapping_name")]
    for name in names:
        if name in ds.variables:
            attrs = ds[name].attrs
            if attrs.get("grid_mapping_name") == "rotated_latitude_longitude":
                return CRS.from_cf(dict(attrs))
    return None


def to_crs(geometries: Sequence[BaseGeometry], crs) -> list[BaseGeometry]:
    """Lon/lat geometries transformed into `crs` (all at once)."""
    import shapely
    from pyproj import Transformer

    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return list(shapely.transform(np.asarray(list(geometries), dtype=object), move))


def _regular_lonlat(ds: xr.Dataset) -> xr.Dataset:
    names = {old: new for old, new in (("latitude", "lat"), ("longitude", "lon")) if old in ds.variables}
    ds = ds.rename(names) if names else ds
    lon = ds["lon"].values.astype(float)
    if lon.size and np.nanmax(lon) > 180.0:
        ds = ds.assign_coords(lon=((lon + 180.0) % 360.0) - 180.0)
    if ds.sizes["lon"] > 1 and not np.all(np.diff(ds["lon"].values) > 0):
        ds = ds.sortby("lon")
    return ds


def _nearest(ds: xr.Dataset, sites: SiteSet, variables: Sequence[str]) -> xr.Dataset:
    """Values of the cell whose centre is nearest each site's representative point (irregular grids)."""
    lon, lat = sites.centroids().T
    ilat = np.abs(ds["lat"].values[None, :] - lat[:, None]).argmin(axis=1)
    dlon = np.abs(((ds["lon"].values[None, :] - lon[:, None]) + 180.0) % 360.0 - 180.0)
    ilon = dlon.argmin(axis=1)
    picked = ds[list(variables)].isel(
        lat=xr.DataArray(ilat, dims="site"), lon=xr.DataArray(ilon, dims="site")
    )
    picked = picked.drop_vars([c for c in ("lat", "lon") if c in picked.coords]).load()
    n = len(sites)
    return picked.assign(
        coverage=("site", np.ones(n)),
        covered=("site", np.ones(n, dtype=bool)),
        extraction=("site", np.array(["nearest"] * n, dtype=object)),
    ).assign_coords(site=("site", np.array(sites.ids, dtype=object)))


def reduce_model_grid(ds: xr.Dataset, sites: SiteSet, variables: Sequence[str]) -> xr.Dataset:
    """Site values (dims ``site``, ``time``) of `variables` on a rotated-pole or regular lon/lat grid, plus
    per-site ``coverage``, ``covered`` and ``extraction`` (see `monitor.extract`)."""
    variables = [v for v in variables if v in ds.data_vars]
    if not variables:
        raise ValueError("none of the variables is in the file")
    geoms = sites.geometries(buffered=True)
    crs = rotated_crs(ds, variables[0])
    if crs is not None:
        drop = [c for c in ("lat", "lon") if c in ds.variables and ds[c].ndim == 2]
        grid = ds[variables].drop_vars(drop, errors="ignore").rename({"rlat": "lat", "rlon": "lon"})
        return _blocks(grid, sites, variables, to_crs(geoms, crs))
    if {"rlat", "rlon"} & set(ds.dims):
        raise ValueError("rotated grid without a rotated_latitude_longitude grid mapping")
    grid = _regular_lonlat(ds[variables])
    try:
        return _blocks(grid, sites, variables, geoms)
    except ValueError as exc:
        if "not regular" not in str(exc):
            raise
        return _nearest(grid, sites, variables)


def _blocks(grid: xr.Dataset, sites: SiteSet, variables: Sequence[str], geoms) -> xr.Dataset:
    """`reduce_to_sites` a block of days at a time (the weights are computed once and cached)."""
    nt = grid.sizes.get("time", 0)
    if nt <= TIME_BLOCK:
        return reduce_to_sites(grid, sites, variables=variables, geometries=geoms)
    parts = [
        reduce_to_sites(
            grid.isel(time=slice(i, i + TIME_BLOCK)), sites, variables=variables, geometries=geoms
        )
        for i in range(0, nt, TIME_BLOCK)
    ]
    stats = parts[0][["coverage", "covered", "extraction"]]
    joined = xr.concat([p[list(variables)] for p in parts], dim="time")
    return joined.assign({k: stats[k] for k in stats.data_vars})
