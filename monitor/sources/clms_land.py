"""CLMS land cover around each site: CORINE Land Cover class groups and HRL imperviousness density, from
local GeoTIFFs (`HM_CLMS_LAND_PATH`, searched recursively for `*.tif`/`*.tiff`; EPSG:3035 as CLMS delivers
them, other CRSs are handled too). Local mode only in this version: the CLMS download API flow (dataset
search → `@datarequest_post` → poll → zip download, Bearer JWT made from a service key) is not implemented
and `check` says so.

Files are recognised by name: CORINE when it contains `CLC` (`U2018_CLC2018_V2020_20u1.tif`),
imperviousness when it contains `IMD` or `imperv` (`IMD_2018_010m_E44N24_03035_v020.tif`); the reference
year is the first 4-digit year in the name. Tiles of one product and year are combined.

Per site, for the polygon and separately for the buffer ring (polygon grown by `buffer_m`, minus the
polygon; `_buffer` variables, NaN when the site has no buffer), with exact cell coverage weights
(exactextract):

- `imperviousness_mean` (%): mean sealing degree of valid cells (0–100; 254 unclassifiable, 255 outside
  and the file's nodata excluded);
- `clc_<group>_fraction`: share of the classified area in each CLC level-1 group: artificial (1xx),
  agricultural (2xx), forest_seminatural (3xx), wetlands (4xx), water (5xx). Both raster codings are read:
  the grid index 1–44 of the CLC GeoTIFF (48 nodata, 49–50 unclassified, 128/255 outside) and the 3-digit
  codes 111–523.

One time step per reference year, on 1 January, when that date falls in the period. `coverage` is the
largest fraction of polygon+buffer with valid cells over the products; `covered` is false when no valid
cell meets the site (outside the product's extent: CLMS covers the Copernicus participating countries
only).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from shapely.geometry.base import BaseGeometry

from monitor.settings import Settings
from monitor.sources import SOURCES, attribution
from monitor.sources.base import SourceNotAvailableError, SourceRequestError
from sites import SiteSet

log = logging.getLogger(__name__)

SOURCE_ID = "clms_land"
YEAR_RE = re.compile(r"(?<!\d)(19[89]\d|20\d\d)(?!\d)")
CLC_GROUPS = ("artificial", "agricultural", "forest_seminatural", "wetlands", "water")
#: CLC GeoTIFF grid index 1–44 -> level-1 group (1 artificial … 5 water)
_INDEX_GROUP = {i: 1 for i in range(1, 12)} | {i: 2 for i in range(12, 23)} | {i: 3 for i in range(23, 35)}
_INDEX_GROUP |= {i: 4 for i in range(35, 40)} | {i: 5 for i in range(40, 45)}


def clc_group(value: float) -> int | None:
    """Level-1 group (1–5) of a CLC raster value in either coding, None when unclassified/outside."""
    v = round(value)
    if 100 <= v < 600:
        return v // 100
    return _INDEX_GROUP.get(v)


VARIABLES: dict[str, dict[str, str]] = {
    "imperviousness_mean": {
        "units": "%",
        "long_name": "Mean imperviousness density (HRL IMD) in the site polygon",
    },
    "imperviousness_mean_buffer": {
        "units": "%",
        "long_name": "Mean imperviousness density (HRL IMD) in the buffer ring around the site",
    },
}
for _g in CLC_GROUPS:
    _label = _g.replace("_", "/")
    VARIABLES[f"clc_{_g}_fraction"] = {
        "units": "1",
        "long_name": f"CORINE {_label} share of the site polygon",
    }
    VARIABLES[f"clc_{_g}_fraction_buffer"] = {
        "units": "1",
        "long_name": f"CORINE {_label} share of the buffer ring around the site",
    }


@dataclass(frozen=True)
class LandFile:
    path: Path
    product: str  # clc | imd
    year: int


def describe(path: Path) -> LandFile | None:
    name = path.name.lower()
    if "clc" in name:
        product = "clc"
    elif "imd" in name or "imperv" in name:
        product = "imd"
    else:
        return None
    match = YEAR_RE.search(path.stem)
    if not match:
        log.warning("skipping %s: no reference year in its name", path.name)
        return None
    return LandFile(path, product, int(match.group(1)))


def _cell_area(src: Any, geom_4326: BaseGeometry) -> float:
    """Area of one cell in m² (projected metres, or degrees scaled at the zone's latitude)."""
    a, e = src.transform.a, src.transform.e
    if src.crs is not None and src.crs.is_geographic:
        lat = math.radians(geom_4326.representative_point().y)
        return abs(a * e) * 111_320.0**2 * math.cos(lat)
    return abs(a * e)


def zone_histograms(
    files: list[LandFile], zones: list[BaseGeometry | None]
) -> tuple[list[dict[float, float]], list[float]]:
    """For each zone (EPSG:4326, None = no zone): coverage-weighted cell counts per raster value over all
    tiles, and the number of m² those counts stand for per cell (of the last tile meeting the zone)."""
    import geopandas as gpd
    import rasterio
    from exactextract import exact_extract

    hists: list[dict[float, float]] = [defaultdict(float) for _ in zones]
    cell_m2 = [0.0 for _ in zones]
    index = [i for i, z in enumerate(zones) if z is not None and not z.is_empty]
    if not index:
        return hists, cell_m2
    zones_4326 = gpd.GeoSeries([zones[i] for i in index], crs=4326)
    for f in files:
        with rasterio.open(f.path) as src:
            projected = zones_4326.to_crs(src.crs) if src.crs is not None else zones_4326
            left, bottom, right, top = src.bounds
            hit = [
                k
                for k, g in enumerate(projected)
                if not (
                    g.bounds[2] < left or g.bounds[0] > right or g.bounds[3] < bottom or g.bounds[1] > top
                )
            ]
            if not hit:
                continue
            frame = gpd.GeoDataFrame({"k": hit}, geometry=[projected.iloc[k] for k in hit], crs=projected.crs)
            result = exact_extract(src, frame, ["unique", "frac", "count"], output="pandas")
            for row, k in zip(result.itertuples(index=False), hit, strict=True):
                i = index[k]
                count = float(row.count or 0.0)
                if count <= 0:
                    continue
                for value, frac in zip(np.atleast_1d(row.unique), np.atleast_1d(row.frac), strict=True):
                    hists[i][float(value)] += float(frac) * count
                cell_m2[i] = _cell_area(src, zones[i])
    return hists, cell_m2


def imd_mean(hist: dict[float, float]) -> tuple[float, float]:
    """(mean %, weight of valid cells) of an imperviousness histogram."""
    valid = {v: w for v, w in hist.items() if 0 <= v <= 100}
    weight = sum(valid.values())
    if weight <= 0:
        return float("nan"), 0.0
    return sum(v * w for v, w in valid.items()) / weight, weight


def clc_fractions(hist: dict[float, float]) -> tuple[dict[str, float], float]:
    """(share per group of the classified area, weight of classified cells) of a CLC histogram."""
    groups = defaultdict(float)
    for v, w in hist.items():
        g = clc_group(v)
        if g is not None:
            groups[g] += w
    weight = sum(groups.values())
    if weight <= 0:
        return {g: float("nan") for g in CLC_GROUPS}, 0.0
    return {name: groups.get(k + 1, 0.0) / weight for k, name in enumerate(CLC_GROUPS)}, weight


class ClmsLandSource:
    """CORINE Land Cover groups and HRL imperviousness per site from local GeoTIFFs."""

    def __init__(self, settings: Settings, mode: str) -> None:
        if mode != "local":
            raise SourceNotAvailableError(
                "clms_land has only a local mode in this version (the CLMS download API flow is not "
                "implemented): put CORINE/HRL GeoTIFFs in HM_CLMS_LAND_PATH and set HM_CLMS_LAND_MODE=local"
            )
        self.info = SOURCES[SOURCE_ID]
        self.mode = mode
        self.settings = settings

    def __repr__(self) -> str:
        return f"ClmsLandSource(mode={self.mode!r})"

    def _files(self) -> list[LandFile]:
        root = self.settings.clms_land_path
        if root is None or not Path(root).exists():
            raise SourceRequestError("HM_CLMS_LAND_PATH must name a folder of CLMS GeoTIFFs (local mode)")
        root = Path(root)
        paths = (
            [root]
            if root.is_file()
            else sorted(p for p in root.rglob("*") if p.suffix.lower() in (".tif", ".tiff"))
        )
        return [f for f in (describe(p) for p in paths) if f is not None]

    def fetch(self, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        if end < start:
            raise SourceRequestError(f"end {end} is before start {start}")
        files = self._files()
        groups: dict[tuple[str, int], list[LandFile]] = defaultdict(list)
        for f in files:
            if start <= date(f.year, 1, 1) <= end:
                groups[(f.product, f.year)].append(f)
        years = sorted({y for _, y in groups})
        ids = sites.ids
        polygons = sites.geometries(buffered=False)
        buffered = sites.geometries(buffered=True)
        rings: list[BaseGeometry | None] = [
            b.difference(p) if s.buffer_m > 0 else None
            for s, p, b in zip(sites, polygons, buffered, strict=True)
        ]
        from sites.geometry import areas_m2

        area_buffered = areas_m2(buffered)
        shape = (len(ids), len(years))
        data = {name: np.full(shape, np.nan, dtype=np.float32) for name in VARIABLES}
        coverage = np.zeros(len(ids))
        used: dict[str, list[str]] = {}
        for (product, year), tiles in sorted(groups.items()):
            j = years.index(year)
            used[f"{product}{year}"] = [t.path.name for t in tiles]
            h_poly, cell_poly = zone_histograms(tiles, list(polygons))
            h_ring, cell_ring = zone_histograms(tiles, rings)
            for i in range(len(ids)):
                if product == "imd":
                    m_poly, w_poly = imd_mean(h_poly[i])
                    m_ring, w_ring = imd_mean(h_ring[i])
                    data["imperviousness_mean"][i, j] = m_poly
                    if rings[i] is not None:
                        data["imperviousness_mean_buffer"][i, j] = m_ring
                else:
                    f_poly, w_poly = clc_fractions(h_poly[i])
                    f_ring, w_ring = clc_fractions(h_ring[i])
                    for g in CLC_GROUPS:
                        data[f"clc_{g}_fraction"][i, j] = f_poly[g]
                        if rings[i] is not None:
                            data[f"clc_{g}_fraction_buffer"][i, j] = f_ring[g]
                valid_m2 = w_poly * cell_poly[i] + w_ring * cell_ring[i]
                if area_buffered[i] > 0:
                    coverage[i] = max(coverage[i], min(1.0, valid_m2 / area_buffered[i]))
        time = np.array([np.datetime64(f"{y:04d}-01-01", "ns") for y in years], dtype="datetime64[ns]")
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
            {"units": "1", "long_name": "Largest fraction of site+buffer with valid CLMS cells"},
        )
        ds["covered"] = ("site", coverage > 0, {"long_name": "site inside CLMS coverage"})
        products = sorted({p for p, _ in groups})
        ds.attrs.update(
            source=SOURCE_ID,
            product=" + ".join(
                {"clc": "CORINE Land Cover", "imd": "HRL Imperviousness Density"}[p] for p in products
            )
            or "CORINE Land Cover / HRL Imperviousness (no file in period)",
            product_version=",".join(sorted(used)),
            attribution=attribution(SOURCE_ID, max(years, default=end.year)),
            request=json.dumps(
                {
                    "mode": "local",
                    "path": str(self.settings.clms_land_path),
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "files": used,
                },
                sort_keys=True,
            ),
            retrieved_at=datetime.now(UTC).isoformat(timespec="seconds"),
            synthetic="false",
        )
        return ds


def build(settings: Settings, mode: str) -> ClmsLandSource:
    """The CLMS land source; only `local` exists in this version."""
    return ClmsLandSource(settings, mode)


def check(settings: Settings) -> dict[str, Any]:
    mode = settings.source_mode(SOURCE_ID)
    if mode == "remote":
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": "remote mode (CLMS download API) not implemented in this version: use local GeoTIFFs",
        }
    if mode != "local":
        return {
            "mode": mode,
            "reachable": None,
            "licence_accepted": None,
            "message": f"mode {mode}: nothing to check",
        }
    path = settings.clms_land_path
    if path is None or not Path(path).exists():
        return {
            "mode": mode,
            "reachable": False,
            "licence_accepted": None,
            "message": "HM_CLMS_LAND_PATH does not exist",
        }
    root = Path(path)
    n = sum(1 for p in root.rglob("*") if p.suffix.lower() in (".tif", ".tiff")) if root.is_dir() else 1
    return {"mode": mode, "reachable": True, "licence_accepted": None, "message": f"{n} GeoTIFFs in {path}"}
