"""European Ground Motion Service (EGMS) ground motion per site, from downloaded CSV files (local mode only:
EGMS has no query API; files come from egms.land.copernicus.eu after login, e.g. with EGMStoolkit).

Layout read (`HM_EGMS_PATH`, searched recursively for `*.csv`): the EGMS CSV of one burst (L2a/L2b) or
tile (L3), header `pid, mp_type, latitude, longitude, easting, northing, height, …, mean_velocity,
mean_velocity_std, acceleration, …` then one `YYYYMMDD` column per acquisition. Points are placed by
`longitude/latitude` (EPSG:4326) when present, else by `easting/northing` (EPSG:3035), which is all some
releases and the L3 files give. The level and release come from the file name
(`EGMS_L2b_146_0296_IW2_VV_2019_2023_1.csv`, `EGMS_L3_E32N34_100km_U_2019_2023_1.csv`); L3 east-west
(`_E_`) files are skipped: only vertical (`_U_`) motion is used from L3.

One product level is used per run (`HM_EGMS_LEVEL`; auto prefers L2b, then L3 vertical, then L2a); each of
its releases whose last acquisition falls in the period gives one time step, at that last acquisition
date.

Per site, from the points of that release inside the polygon grown by its buffer and passing the quality
filter `mean_velocity_std < HM_EGMS_MAX_VELOCITY_STD`: `ground_velocity_mean|min|max` (mm/yr; line of
sight for L2a/L2b, vertical for L3), `ground_acceleration_mean` (mm/yr²), `egms_points` (count) and
`ground_velocity_differential`, the max − min velocity among the points inside the polygon itself
(differential movement across the monument). `coverage` is the fraction of the site+buffer inside the
release's data extent (convex hull of its points, grown by 50 m; areas in EPSG:3035); `covered` is false
for a site outside every file's extent (EGMS covers the Copernicus participating countries only), distinct
from a covered site without any point passing the filter (`egms_points` = 0).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.settings import Settings
from monitor.sources import SOURCES, attribution
from monitor.sources.base import SourceNotAvailableError, SourceRequestError
from sites import SiteSet

log = logging.getLogger(__name__)

SOURCE_ID = "egms"
NAME_RE = re.compile(r"EGMS_(?P<level>L2a|L2b|L3)_.*_(?P<y0>\d{4})_(?P<y1>\d{4})_(?P<version>\d+)$", re.I)
COMPONENT_RE = re.compile(r"_(?P<component>[UE])_\d{4}_\d{4}_\d+$", re.I)
DATE_RE = re.compile(r"^\d{8}$")
EXTENT_BUFFER_M = 50.0
CHUNK_ROWS = 200_000
AUTO_ORDER = ("L2b", "L3", "L2a", "unknown")

VARIABLES: dict[str, dict[str, str]] = {
    "ground_velocity_mean": {"units": "mm yr-1", "long_name": "Mean velocity of EGMS points in site+buffer"},
    "ground_velocity_min": {"units": "mm yr-1", "long_name": "Lowest velocity of EGMS points in site+buffer"},
    "ground_velocity_max": {
        "units": "mm yr-1",
        "long_name": "Highest velocity of EGMS points in site+buffer",
    },
    "ground_velocity_differential": {
        "units": "mm yr-1",
        "long_name": "Max minus min velocity of EGMS points inside the site polygon",
    },
    "ground_acceleration_mean": {
        "units": "mm yr-2",
        "long_name": "Mean acceleration of EGMS points in site+buffer",
    },
    "egms_points": {"units": "1", "long_name": "EGMS points in site+buffer passing the quality filter"},
}


@dataclass
class EgmsFile:
    path: Path
    level: str
    component: str | None
    release: str  # e.g. "2019_2023_v1"
    columns: list[str]
    last_date: date
    crs: int  # 4326 (lon/lat) or 3035 (easting/northing)


def describe(path: Path) -> EgmsFile | None:
    """Level, release, coordinate columns and last acquisition of one EGMS CSV (header only)."""
    try:
        columns = [c.strip() for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        log.warning("skipping %s: %s", path.name, type(exc).__name__)
        return None
    dates = sorted(c for c in columns if DATE_RE.match(c))
    if "mean_velocity" not in columns or not dates:
        log.warning("skipping %s: not an EGMS CSV (no mean_velocity or no YYYYMMDD columns)", path.name)
        return None
    lower = set(columns)
    if {"latitude", "longitude"} <= lower:
        crs = 4326
    elif {"easting", "northing"} <= lower:
        crs = 3035
    else:
        log.warning("skipping %s: neither latitude/longitude nor easting/northing", path.name)
        return None
    match = NAME_RE.search(path.stem)
    if match:
        level = {"l2a": "L2a", "l2b": "L2b", "l3": "L3"}[match["level"].lower()]
        comp = COMPONENT_RE.search(path.stem) if level == "L3" else None
        component = comp["component"].upper() if comp else None
        release = f"{match['y0']}_{match['y1']}_v{match['version']}"
    else:
        level = "unknown"
        component = None
        release = f"{dates[0][:4]}_{dates[-1][:4]}"
    last = datetime.strptime(dates[-1], "%Y%m%d").date()
    return EgmsFile(path, level, component, release, columns, last, crs)


@dataclass
class Release:
    level: str
    release: str
    files: list[EgmsFile] = field(default_factory=list)

    @property
    def last_date(self) -> date:
        return max(f.last_date for f in self.files)


def choose_level(files: list[EgmsFile], wanted: str) -> str | None:
    levels = {f.level for f in files}
    if wanted != "auto":
        return wanted if wanted in levels else None
    return next((lv for lv in AUTO_ORDER if lv in levels), None)


def _to_crs(geoms: list[BaseGeometry], epsg: int) -> list[BaseGeometry]:
    if epsg == 4326:
        return list(geoms)
    import geopandas as gpd

    return list(gpd.GeoSeries(geoms, crs=4326).to_crs(epsg))


@dataclass
class SitePoints:
    velocity: list[np.ndarray] = field(default_factory=list)
    acceleration: list[np.ndarray] = field(default_factory=list)
    inner_velocity: list[np.ndarray] = field(default_factory=list)


def read_release(
    release: Release, outer: list[BaseGeometry], inner: list[BaseGeometry], max_std: float
) -> tuple[list[SitePoints], BaseGeometry | None]:
    """Quality-filtered points of a release inside each site+buffer (`outer`) and polygon (`inner`), and the
    release's data extent in EPSG:3035."""
    found = [SitePoints() for _ in outer]
    hulls: list[BaseGeometry] = []
    for f in release.files:
        x_col, y_col = ("longitude", "latitude") if f.crs == 4326 else ("easting", "northing")
        wanted = [x_col, y_col, "mean_velocity", "mean_velocity_std", "acceleration"]
        usecols = [c for c in wanted if c in f.columns]
        outer_f = _to_crs(outer, f.crs)
        inner_f = _to_crs(inner, f.crs)
        for g in outer_f:
            shapely.prepare(g)
        for g in inner_f:
            shapely.prepare(g)
        bounds = shapely.total_bounds(outer_f) if outer_f else None
        file_hull_parts: list[BaseGeometry] = []
        for chunk in pd.read_csv(
            f.path,
            usecols=lambda c, keep=set(usecols): c.strip() in keep,
            chunksize=CHUNK_ROWS,
        ):
            chunk.columns = [c.strip() for c in chunk.columns]
            x = pd.to_numeric(chunk[x_col], errors="coerce").to_numpy(float)
            y = pd.to_numeric(chunk[y_col], errors="coerce").to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any():
                file_hull_parts.append(shapely.multipoints(np.column_stack([x[ok], y[ok]])).convex_hull)
            if bounds is None:
                continue
            v = pd.to_numeric(chunk["mean_velocity"], errors="coerce").to_numpy(float)
            std = (
                pd.to_numeric(chunk["mean_velocity_std"], errors="coerce").to_numpy(float)
                if "mean_velocity_std" in chunk
                else np.zeros_like(v)
            )
            acc = (
                pd.to_numeric(chunk["acceleration"], errors="coerce").to_numpy(float)
                if "acceleration" in chunk
                else np.full_like(v, np.nan)
            )
            keep = (
                ok
                & np.isfinite(v)
                & (std < max_std)
                & (x >= bounds[0])
                & (x <= bounds[2])
                & (y >= bounds[1])
                & (y <= bounds[3])
            )
            if not keep.any():
                continue
            xs, ys, vs, accs = x[keep], y[keep], v[keep], acc[keep]
            for i, (g_out, g_in) in enumerate(zip(outer_f, inner_f, strict=True)):
                in_out = shapely.contains_xy(g_out, xs, ys)
                if not in_out.any():
                    continue
                found[i].velocity.append(vs[in_out])
                found[i].acceleration.append(accs[in_out])
                in_in = shapely.contains_xy(g_in, xs, ys)
                found[i].inner_velocity.append(vs[in_in])
        if file_hull_parts:
            hull = shapely.union_all(file_hull_parts).convex_hull
            if f.crs != 3035:
                hull = _to_crs([hull], 3035)[0]
            hulls.append(hull.buffer(EXTENT_BUFFER_M))
    extent = shapely.union_all(hulls) if hulls else None
    return found, extent


def _stats(points: SitePoints) -> dict[str, float]:
    v = np.concatenate(points.velocity) if points.velocity else np.array([])
    a = np.concatenate(points.acceleration) if points.acceleration else np.array([])
    vin = np.concatenate(points.inner_velocity) if points.inner_velocity else np.array([])
    out = {
        "egms_points": float(v.size),
        "ground_velocity_mean": float(v.mean()) if v.size else np.nan,
        "ground_velocity_min": float(v.min()) if v.size else np.nan,
        "ground_velocity_max": float(v.max()) if v.size else np.nan,
        "ground_acceleration_mean": float(np.nanmean(a)) if a.size and np.isfinite(a).any() else np.nan,
        "ground_velocity_differential": float(vin.max() - vin.min()) if vin.size >= 2 else np.nan,
    }
    return out


class EgmsSource:
    """EGMS ground motion per site from local CSV files."""

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode != "local":
            raise SourceNotAvailableError(
                "egms has only a local mode: EGMS offers no query API; download the CSVs and set HM_EGMS_PATH"
            )
        self.info = SOURCES[SOURCE_ID]
        self.mode = mode
        self.settings = settings

    def __repr__(self) -> str:
        return f"EgmsSource(mode={self.mode!r})"

    def _files(self) -> list[EgmsFile]:
        root = self.settings.egms_path
        if root is None or not Path(root).exists():
            raise SourceRequestError("HM_EGMS_PATH must name a folder of EGMS CSV files (local mode)")
        root = Path(root)
        paths = [root] if root.is_file() else sorted(root.rglob("*.csv"))
        files = [f for f in (describe(p) for p in paths) if f is not None]
        return [f for f in files if not (f.level == "L3" and f.component == "E")]

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        if end < start:
            raise SourceRequestError(f"end {end} is before start {start}")
        files = self._files()
        level = choose_level(files, self.settings.egms_level)
        releases: dict[str, Release] = {}
        for f in files:
            if f.level == level:
                releases.setdefault(f.release, Release(level, f.release)).files.append(f)
        chosen = sorted(
            (r for r in releases.values() if start <= r.last_date <= end), key=lambda r: r.last_date
        )
        ids = sites.ids
        outer = sites.geometries(buffered=True)
        inner = sites.geometries(buffered=False)
        outer_3035 = _to_crs(outer, 3035)
        area = np.array([g.area for g in outer_3035])
        shape = (len(ids), len(chosen))
        data = {name: np.full(shape, np.nan, dtype=np.float32) for name in VARIABLES}
        coverage = np.zeros(len(ids))
        max_std = self.settings.egms_max_velocity_std
        for j, rel in enumerate(chosen):
            points, extent = read_release(rel, outer, inner, max_std)
            if extent is not None:
                inside = np.array(
                    [
                        g.intersection(extent).area / a if a > 0 else float(g.intersects(extent))
                        for g, a in zip(outer_3035, area, strict=True)
                    ]
                )
                coverage = np.maximum(coverage, np.clip(inside, 0.0, 1.0))
            for i, p in enumerate(points):
                for name, value in _stats(p).items():
                    data[name][i, j] = value
        covered = coverage > 0
        for j in range(len(chosen)):  # a covered site without points has 0 points, not unknown
            data["egms_points"][covered & np.isnan(data["egms_points"][:, j]), j] = 0
        for name in VARIABLES:
            data[name][~covered, :] = np.nan
        time = np.array(
            [np.datetime64(r.last_date.isoformat(), "ns") for r in chosen], dtype="datetime64[ns]"
        )
        ds = xr.Dataset(
            {name: (("site", "time"), data[name], dict(attrs)) for name, attrs in VARIABLES.items()},
            coords={
                "site": ("site", np.array(ids, dtype=object), {"long_name": "site id"}),
                "time": ("time", time, {"standard_name": "time", "long_name": "time"}),
            },
        )
        ds["coverage"] = (
            "site",
            coverage,
            {"units": "1", "long_name": "Fraction of site+buffer inside the EGMS data extent"},
        )
        ds["covered"] = ("site", covered, {"long_name": "site inside EGMS coverage"})
        motion = "vertical" if level == "L3" else "line of sight"
        ds.attrs.update(
            source=SOURCE_ID,
            product=f"EGMS {level or 'none'} ({motion})",
            product_version=",".join(r.release for r in chosen),
            attribution=attribution(SOURCE_ID, max((r.last_date.year for r in chosen), default=end.year)),
            request=json.dumps(
                {
                    "mode": "local",
                    "path": str(self.settings.egms_path),
                    "level": level,
                    "max_velocity_std": max_std,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "files": {r.release: [f.path.name for f in r.files] for r in chosen},
                },
                sort_keys=True,
            ),
            retrieved_at=datetime.now(UTC).isoformat(timespec="seconds"),
            synthetic="false",
        )
        return ds


def build(settings: Settings, mode: str) -> EgmsSource:
    """The EGMS source; only `local` exists."""
    return EgmsSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    mode = settings.source_mode(SOURCE_ID)
    if mode != "local":
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": "EGMS has no remote mode (no query API): use local CSV files"
            if mode == "remote"
            else "demo",
        }
    path = settings.egms_path
    if path is None or not Path(path).exists():
        return {
            "mode": mode,
            "reachable": False,
            "licence_accepted": None,
            "message": "HM_EGMS_PATH does not exist",
        }
    n = len(list(Path(path).rglob("*.csv"))) if Path(path).is_dir() else 1
    return {"mode": mode, "reachable": True, "licence_accepted": None, "message": f"{n} CSV files in {path}"}
