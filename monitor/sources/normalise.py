"""One place where provider files become plain (time, lat, lon) datasets.

Copernicus data stores hand out NetCDF (classic or NetCDF-4, sometimes packed int16), GRIB 1/2, ZIP
archives holding several NetCDF files (the new CDS splits instantaneous and accumulated variables into
``data_stream-…_stepType-instant.nc`` and ``…-accum.nc``; CAMS Europe sends one file per species) and, for
some fire-danger requests, a ZIP saved with a ``.nc`` name. The CDS NetCDF converter is not a stable
format (ECMWF's own warning), so names are normalised defensively:

- the file type is sniffed from its first bytes, not its name;
- ``valid_time`` → ``time``; a forecast-style pair (reference time ``time``/``forecast_reference_time`` ×
  lead ``step``/``forecast_period``/``leadtime``) is flattened to valid times, keeping for each valid time
  the shortest lead, which is kept as the coordinate ``lead`` on ``time``;
- ``latitude``/``longitude`` → ``lat``/``lon``; longitudes 0…360 → −180…180, sorted ascending;
- the useless ``number`` coordinate is dropped (a real ensemble dimension ``number``/``realization`` is
  renamed ``member`` and left to the source to reduce); other scalar GRIB coordinates are dropped;
- ``expver``: as a dimension (old CDS, ERA5 and ERA5T mixed) the first non-missing value along it is taken
  and the chosen expver is kept; as a coordinate it is kept; either way it ends as a 4-character string
  coordinate ``expver`` on ``time``;
- GRIB goes through cfgrib, without writing ``.idx`` files next to the data;
- the attribute ``source_file`` names the file (or the ZIP member) each dataset came from.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

__all__ = ["file_kind", "iter_files", "normalise", "open_normalised"]

LEAD_DIMS = ("forecast_period", "step", "leadtime", "lead_time", "leadtime_hour")
REFERENCE_DIMS = ("forecast_reference_time", "time")
#: Scalar GRIB coordinates that carry nothing for us (a scalar ``step`` is kept: it becomes ``lead``).
SCALAR_JUNK = ("number", "surface", "heightAboveGround", "depthBelowLandLayer", "entireAtmosphere")
#: File names never read as data (cfgrib indexes, our cache sidecars, notes).
SKIPPED_SUFFIXES = (".idx", ".json", ".md", ".txt", ".part", ".tmp")


def file_kind(path: Path) -> str | None:
    """``zip``, ``grib``, ``netcdf`` or None, from the first bytes of the file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"GRIB"):
        return "grib"
    if head.startswith(b"\x89HDF") or head.startswith(b"CDF"):
        return "netcdf"
    return None


def iter_files(path: Path) -> list[Path]:
    """Data files under `path` (itself if it is a file), sorted, hidden and helper files left out."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and p.suffix.lower() not in SKIPPED_SUFFIXES
    ]
    return files


@contextlib.contextmanager
def open_normalised(path: Path) -> Iterator[list[xr.Dataset]]:
    """The normalised datasets held by one file (several for a ZIP or a multi-cube GRIB), lazily opened
    and closed on exit."""
    kind = file_kind(path)
    if kind is None:
        raise ValueError(f"{Path(path).name}: not a NetCDF, GRIB or ZIP file")
    with contextlib.ExitStack() as stack:
        raw: list[tuple[str, xr.Dataset]] = []
        if kind == "zip":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hm-zip-")))
            for name, target in unpack_zip(path, tmp):
                if file_kind(target) in ("netcdf", "grib"):
                    raw.extend((name, ds) for ds in _open_plain(target, stack))
        else:
            raw.extend((Path(path).name, ds) for ds in _open_plain(Path(path), stack))
        yield [normalise(ds).assign_attrs(source_file=name) for name, ds in raw]


def unpack_zip(path: Path, folder: Path) -> list[tuple[str, Path]]:
    """Every file member of the ZIP at `path` written into `folder`: (member's base name, written file),
    numbered so that members of the same name in different folders never overwrite each other."""
    unpacked = []
    with zipfile.ZipFile(path) as archive:
        for i, member in enumerate(m for m in archive.infolist() if not m.is_dir()):
            name = Path(member.filename).name
            target = folder / f"{i:04d}-{name}"
            with archive.open(member) as src, open(target, "wb") as dst:
                dst.write(src.read())
            unpacked.append((name, target))
    return unpacked


def _open_plain(path: Path, stack: contextlib.ExitStack) -> list[xr.Dataset]:
    kind = file_kind(path)
    if kind == "grib":
        import cfgrib

        datasets = cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
    elif kind == "netcdf":
        datasets = [xr.open_dataset(path, decode_timedelta=True)]
    else:
        return []
    for ds in datasets:
        stack.callback(ds.close)
    return datasets


def normalise(ds: xr.Dataset) -> xr.Dataset:
    """Provider names and conventions to ours (see the module docstring). Lazy: nothing is loaded."""
    ds = _rename_space(ds)
    ds = _drop_scalar_junk(ds)
    ds = _members(ds)
    ds = _time(ds)
    ds = _expver(ds)
    ds = _longitudes(ds)
    return ds


def _rename_space(ds: xr.Dataset) -> xr.Dataset:
    names = {}
    for old, new in (("latitude", "lat"), ("longitude", "lon")):
        if old in ds.variables and new not in ds.variables:
            names[old] = new
    return ds.rename(names) if names else ds


def _drop_scalar_junk(ds: xr.Dataset) -> xr.Dataset:
    drop = [c for c in SCALAR_JUNK if c in ds.coords and ds[c].ndim == 0]
    if "number" in ds.dims and ds.sizes["number"] == 1:
        ds = ds.squeeze("number", drop=True)
    return ds.drop_vars(drop)


def _members(ds: xr.Dataset) -> xr.Dataset:
    for name in ("number", "realization"):
        if name in ds.dims:
            return ds.rename({name: "member"})
    return ds


def _lead_dim(ds: xr.Dataset) -> str | None:
    return next((d for d in LEAD_DIMS if d in ds.dims), None)


def _as_timedelta(values: np.ndarray, units: str | None) -> np.ndarray:
    if np.issubdtype(values.dtype, np.timedelta64):
        return values.astype("timedelta64[ns]")
    unit = (units or "hours").split()[0].lower()
    scale = {"hours": "h", "hour": "h", "h": "h", "days": "D", "day": "D", "minutes": "m", "seconds": "s"}
    return pd.to_timedelta(np.asarray(values, dtype=float), unit=scale.get(unit, "h")).to_numpy()


def _time(ds: xr.Dataset) -> xr.Dataset:
    lead = _lead_dim(ds)
    ref = next((d for d in REFERENCE_DIMS if d in ds.dims and d != lead), None)
    if lead is not None and ref is None:
        # one forecast: a scalar reference time (cfgrib `time`, or `forecast_reference_time`)
        ref = next((c for c in REFERENCE_DIMS if c in ds.coords and ds[c].ndim == 0), None)
        if ref is not None:
            ds = ds.expand_dims(ref)
    if lead is not None and ref is not None:
        return _flatten_forecast(ds, ref, lead)
    if "valid_time" in ds.dims:
        if "time" in ds.coords and "time" not in ds.dims:
            ds = ds.drop_vars("time")
        ds = ds.rename({"valid_time": "time"})
    elif "valid_time" in ds.coords:
        vt = ds["valid_time"]
        if vt.ndim == 1 and "time" in vt.dims:
            ds = ds.drop_vars("valid_time").assign_coords(time=("time", vt.values))
        elif vt.ndim == 0:
            ds = ds.drop_vars([c for c in ("valid_time", "time") if c in ds.coords])
            ds = ds.expand_dims(time=[vt.values])
    elif "time" in ds.coords and ds["time"].ndim == 0:
        ds = ds.expand_dims("time")
    if "time" in ds.coords and lead is None:
        step = next((c for c in ("step", "forecast_period") if c in ds.coords and ds[c].ndim == 0), None)
        if step is not None:
            delta = _as_timedelta(np.atleast_1d(ds[step].values), ds[step].attrs.get("units"))[0]
            ds = ds.drop_vars(step).assign_coords(lead=("time", np.full(ds.sizes["time"], delta)))
    for extra in ("forecast_reference_time",):
        if extra in ds.coords and extra not in ds.dims:
            ds = ds.drop_vars(extra)
    if "time" in ds.dims:
        ds = ds.assign_coords(time=pd.to_datetime(ds["time"].values).as_unit("ns").to_numpy())
    return ds


def _flatten_forecast(ds: xr.Dataset, ref: str, lead: str) -> xr.Dataset:
    """(reference time × lead) → valid time, shortest lead first; the lead is kept as coordinate `lead`."""
    refs = pd.to_datetime(ds[ref].values).as_unit("ns").to_numpy()
    leads = _as_timedelta(ds[lead].values, ds[lead].attrs.get("units"))
    drop = [
        c
        for c in ("valid_time", "time", "forecast_reference_time")
        if c in ds.coords and c not in (ref, lead)
    ]
    ds = ds.drop_vars(drop)
    ds = ds.assign_coords({ref: refs, lead: leads})
    stacked = ds.stack(_vt=(ref, lead))
    r = stacked[ref].values
    ll = stacked[lead].values
    valid = r + ll
    order = np.lexsort((ll, valid))
    keep = order[np.r_[True, valid[order][1:] != valid[order][:-1]]]
    out = stacked.isel(_vt=keep)
    out = out.drop_vars(["_vt", ref, lead])
    out = out.assign_coords(_vt=valid[keep]).rename({"_vt": "time"})
    return out.assign_coords(lead=("time", ll[keep])).transpose("time", ...)


def _expver_str(values: np.ndarray) -> np.ndarray:
    out = []
    for v in np.asarray(values).ravel():
        if isinstance(v, bytes):
            v = v.decode()
        try:
            out.append(f"{int(float(v)):04d}")
        except (TypeError, ValueError):
            out.append(str(v))
    return np.array(out, dtype=object)


def _expver(ds: xr.Dataset) -> xr.Dataset:
    if "expver" not in ds.variables:
        return ds
    if "expver" in ds.dims:
        codes = _expver_str(ds["expver"].values)
        parts = [ds.isel(expver=i, drop=True) for i in range(ds.sizes["expver"])]
        combined = parts[0]
        chosen = np.full(ds.sizes.get("time", 1), codes[0], dtype=object)
        for code, part in zip(codes[1:], parts[1:], strict=True):
            first_var = next(iter(combined.data_vars))
            missing = combined[first_var].isnull()
            other_dims = [d for d in missing.dims if d != "time"]
            missing_time = missing.all(other_dims).values if other_dims else missing.values
            chosen = np.where(missing_time, code, chosen)
            combined = combined.fillna(part)
        return combined.assign_coords(expver=("time", chosen))
    coord = ds["expver"]
    if coord.ndim == 0 and "time" in ds.dims:
        return ds.assign_coords(expver=("time", np.repeat(_expver_str(coord.values), ds.sizes["time"])))
    if coord.dims == ("time",):
        return ds.assign_coords(expver=("time", _expver_str(coord.values)))
    return ds


def _longitudes(ds: xr.Dataset) -> xr.Dataset:
    if "lon" not in ds.coords or ds["lon"].ndim != 1:
        return ds
    lon = ds["lon"].values.astype(float)
    if lon.size and np.nanmax(lon) > 180.0:
        ds = ds.assign_coords(lon=((lon + 180.0) % 360.0) - 180.0)
    if ds.sizes["lon"] > 1 and not np.all(np.diff(ds["lon"].values) > 0):
        ds = ds.sortby("lon")
    return ds
