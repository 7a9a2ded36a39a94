"""Polygon-weighted reduction of gridded data to heritage sites: the zonal step of every gridded source.

For each site the polygon grown by its buffer is laid over a regular lon/lat grid. exactextract gives, in
one pass over all polygons, the fraction of each cell the polygon covers (an exact polygon–rectangle
intersection, not a centre-in-polygon test). The site value is the mean of the cells weighted by
``covered fraction × cell area``, the cell area taken proportional to cos(latitude) of its centre
(cells of a regular lon/lat grid shrink towards the poles). The weights depend only on the grid and the
site set, so they are cached per (grid, site set).

Missing values: a NaN cell (a sea cell of the land-only ERA5-Land, a hole in a product) is left out and
the weights of the remaining cells are renormalised, time step by time step.

Per site the reduction reports:

- ``coverage``: fraction 0–1 of the polygon+buffer area covered by cells holding valid data (a cell is
  valid when the mask variable has at least one value in the reduced period); the part of the polygon
  outside the grid counts as not covered;
- ``covered``: False when the polygon+buffer does not touch the grid at all (outside the product's
  domain, or outside the area that was downloaded) — distinct from "inside, but no data";
- ``extraction``: ``mean`` (area-weighted mean of valid cells), ``nearest`` (no valid cell inside the
  polygon+buffer: the value of the nearest valid cell among those touching it or, failing that, their
  immediate neighbours — e.g. a small coastal site lying on sea cells), ``none`` (inside the domain but
  no valid cell within reach) or ``outside`` (not covered).

A polygon smaller than a cell gets the value of the cell it falls in (weight 1, coverage 1); one that
straddles cells gets their area-weighted mean. Longitudes must be in −180…180 (see
`monitor.sources.normalise`); polygons crossing the antimeridian are not supported.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
import xarray as xr
from scipy import sparse
from shapely.geometry.base import BaseGeometry

from sites import SiteSet

__all__ = ["Grid", "SiteWeights", "reduce_to_sites", "site_weights"]

#: Relative tolerance on the spacing of a regular grid.
SPACING_RTOL = 1e-3
#: Overlaps smaller than this fraction of the polygon's area are rounding noise, not overlaps.
SLIVER = 1e-9
#: How many (grid, site set) weight tables are kept in memory.
CACHE_SIZE = 32

EXTRACTION_CODES = ("mean", "nearest", "none", "outside")


@dataclass(frozen=True)
class Grid:
    """A regular lon/lat grid given by its cell centres, in the order they have in the data."""

    lat: np.ndarray
    lon: np.ndarray
    dlat: float
    dlon: float

    @classmethod
    def from_coords(
        cls, lat: Sequence[float], lon: Sequence[float], resolution: float | tuple[float, float] | None = None
    ) -> Grid:
        """The grid of these centres; `resolution` (degrees, or (dlat, dlon)) is needed only for an axis of
        a single cell, whose spacing cannot be read from the coordinates."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        if isinstance(resolution, tuple):
            res_lat, res_lon = resolution
        else:
            res_lat = res_lon = resolution
        return cls(lat, lon, _spacing(lat, res_lat, "latitude"), _spacing(lon, res_lon, "longitude"))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the cells' outer edges."""
        return (
            float(self.lon.min() - self.dlon / 2),
            float(self.lat.min() - self.dlat / 2),
            float(self.lon.max() + self.dlon / 2),
            float(self.lat.max() + self.dlat / 2),
        )

    @property
    def key(self) -> str:
        """A stable identity of the grid (for caches)."""
        h = hashlib.sha256()
        for arr in (self.lat, self.lon, np.array([self.dlat, self.dlon])):
            h.update(np.round(arr, 6).tobytes())
        return h.hexdigest()

    def _row_to_ilat(self, rows: np.ndarray) -> np.ndarray:
        """North-up row numbers (exactextract's) to indices along the data's latitude axis."""
        descending = self.lat.size < 2 or self.lat[0] > self.lat[-1]
        return rows if descending else self.lat.size - 1 - rows

    def _col_to_ilon(self, cols: np.ndarray) -> np.ndarray:
        ascending = self.lon.size < 2 or self.lon[0] < self.lon[-1]
        return cols if ascending else self.lon.size - 1 - cols

    def cell_boxes(self, ilat: np.ndarray, ilon: np.ndarray) -> np.ndarray:
        """Shapely boxes of cells given by data indices."""
        x, y = self.lon[ilon], self.lat[ilat]
        return shapely.box(x - self.dlon / 2, y - self.dlat / 2, x + self.dlon / 2, y + self.dlat / 2)


def _spacing(values: np.ndarray, fallback: float | None, name: str) -> float:
    if values.size == 0:
        raise ValueError(f"empty {name} axis")
    if values.size == 1:
        if fallback is None:
            raise ValueError(f"a single {name} cell: its size must be given (resolution)")
        return float(fallback)
    steps = np.diff(values)
    step = float(np.median(np.abs(steps)))
    if step <= 0 or not (np.all(np.sign(steps) == np.sign(steps[0]))):
        raise ValueError(f"{name} centres are not strictly monotonic")
    if np.max(np.abs(np.abs(steps) - step)) > SPACING_RTOL * step:
        raise ValueError(f"{name} spacing is not regular; regrid the data first")
    return step


@dataclass(frozen=True)
class SiteWeights:
    """Polygon–cell weights of a site set on a grid (sparse: one entry per site and touched cell)."""

    grid: Grid
    n_sites: int
    #: entry -> site index, flat data cell index (ilat * nlon + ilon), intersection area (deg²)
    site: np.ndarray
    cell: np.ndarray
    area: np.ndarray
    #: per site: polygon+buffer area (deg²) and whether it touches the grid
    site_area: np.ndarray
    covered: np.ndarray
    #: fallback candidates: cells touching the polygon or next to those, with their distance (deg)
    ring_site: np.ndarray
    ring_cell: np.ndarray
    ring_dist: np.ndarray

    @property
    def cos_lat(self) -> np.ndarray:
        """Relative cell area of each entry (cos of the cell's centre latitude)."""
        ilat = self.cell // self.grid.lon.size
        return np.cos(np.deg2rad(self.grid.lat[ilat]))


_CACHE: OrderedDict[tuple[str, str], SiteWeights] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _geometries_key(ids: Sequence[str], geoms: Sequence[BaseGeometry]) -> str:
    """A digest of the ids and their geometries (WKB), every length included so no two sets collide."""
    if len(ids) != len(geoms):
        raise ValueError(f"{len(ids)} site ids for {len(geoms)} geometries")
    wkb = shapely.to_wkb(np.asarray(geoms, dtype=object))  # one call: per-geometry calls cost 7 µs each
    names = [site_id.encode() for site_id in ids]
    h = hashlib.sha256()
    h.update(np.fromiter(map(len, names), np.int64, len(names)).tobytes())
    h.update(b"".join(names))
    h.update(np.fromiter(map(len, wkb), np.int64, len(wkb)).tobytes())
    h.update(b"".join(wkb))
    return h.hexdigest()


def _buffered_with_key(sites: SiteSet) -> tuple[list[BaseGeometry], str]:
    """The sites' polygons grown by their buffers, and the cache digest of them with the ids."""
    geoms = sites.geometries(buffered=True)
    return geoms, _geometries_key(sites.ids, geoms)


def site_weights(grid: Grid, sites: SiteSet, geometries: Sequence[BaseGeometry] | None = None) -> SiteWeights:
    """The weights of `sites` (polygons grown by their buffers, or `geometries`) on `grid`, cached."""
    if geometries is not None:
        geoms = list(geometries)
        digest = _geometries_key(sites.ids, geoms)
    else:  # the set's own buffered polygons and their digest, derived once per site set
        geoms, digest = sites.derived("extract.buffered", lambda: _buffered_with_key(sites))
    key = (grid.key, digest)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    weights = _compute_weights(grid, geoms)
    with _CACHE_LOCK:
        _CACHE[key] = weights
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return weights


def _compute_weights(grid: Grid, geoms: list[BaseGeometry]) -> SiteWeights:
    from exactextract.raster import NumPyRasterSource
    from pyproj import CRS

    from monitor.exactextract_io import cell_coverage

    nlat, nlon = grid.shape
    west, south, east, north = grid.bounds
    wgs84 = CRS.from_epsg(4326).to_wkt()
    raster = NumPyRasterSource(
        np.zeros((nlat, nlon), dtype=np.float32), west, south, east, north, srs_wkt=wgs84
    )
    cell_lists, coverage_lists = cell_coverage(raster, geoms, wgs84)

    polygons = np.asarray(geoms, dtype=object)
    site_area = np.asarray(shapely.area(polygons), dtype=float)
    cell_area = grid.dlat * grid.dlon
    counts = np.fromiter(map(len, cell_lists), np.int64, len(cell_lists))
    site = np.repeat(np.arange(len(geoms), dtype=np.int64), counts)
    cell_ids = np.concatenate([np.zeros(0, np.int64), *cell_lists]).astype(np.int64)
    frac = np.concatenate([np.zeros(0), *coverage_lists]).astype(float)
    # slivers of rounding size (a polygon edge lying on a cell edge) are not overlaps
    keep = frac * cell_area > SLIVER * site_area[site]
    site, cell_ids, frac = site[keep], cell_ids[keep], frac[keep]
    r, c = np.divmod(cell_ids, nlon)
    cell = grid._row_to_ilat(r) * nlon + grid._col_to_ilon(c)

    extent = shapely.box(west, south, east, north)
    covered = np.asarray(shapely.intersects(polygons, extent), dtype=bool)
    covered &= np.bincount(site, minlength=len(geoms)) > 0

    ring_site, ring_cell, ring_dist = _rings(grid, geoms, covered)
    return SiteWeights(
        grid=grid,
        n_sites=len(geoms),
        site=site,
        cell=cell,
        area=frac * grid.dlat * grid.dlon,
        site_area=site_area,
        covered=covered,
        ring_site=ring_site,
        ring_cell=ring_cell,
        ring_dist=ring_dist,
    )


def _axis_ranges(
    centres: np.ndarray, step: float, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (lo, hi), the indices [first, stop) of the cells along one axis whose extent meets [lo, hi]:
    one run of cells, since the centres are regular and monotonic."""
    ascending = centres.size < 2 or centres[0] < centres[-1]
    ordered = centres if ascending else centres[::-1]
    first = np.searchsorted(ordered + step / 2, lo, side="left")
    stop = np.maximum(np.searchsorted(ordered - step / 2, hi, side="right"), first)
    return (first, stop) if ascending else (centres.size - stop, centres.size - first)


def _rings(grid: Grid, geoms: list[BaseGeometry], covered: np.ndarray):
    """Fallback candidates per covered polygon: the cells touching it and their 8 neighbours, ranked by the
    distance from the polygon to the cell centre, touching cells first. Every polygon at once: each one's
    box of cells (its bounds grown by a cell) is laid out flat, row by row."""
    empty = np.zeros(0, dtype=np.int64)
    idx = np.flatnonzero(covered)
    if idx.size == 0:
        return empty, empty, np.zeros(0)
    polygons = np.asarray(geoms, dtype=object)[idx]
    west, south, east, north = shapely.bounds(polygons).T
    lat0, lat1 = _axis_ranges(grid.lat, grid.dlat, south - grid.dlat, north + grid.dlat)
    lon0, lon1 = _axis_ranges(grid.lon, grid.dlon, west - grid.dlon, east + grid.dlon)
    height, width = lat1 - lat0, lon1 - lon0
    size = height * width
    owner = np.repeat(np.arange(idx.size), size)  # entry -> position in idx
    row, col = np.divmod(np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size), width[owner])
    ilat, ilon = lat0[owner] + row, lon0[owner] + col
    touching = shapely.intersects(grid.cell_boxes(ilat, ilon), polygons[owner])
    near = touching.copy()  # touching cells grown by one cell, inside each polygon's box
    rows_in, cols_in = height[owner], width[owner]
    for dr, dc in itertools.product((-1, 0, 1), repeat=2):
        inside = np.flatnonzero(
            (row + dr >= 0) & (row + dr < rows_in) & (col + dc >= 0) & (col + dc < cols_in)
        )
        near[inside] |= touching[inside + dr * cols_in[inside] + dc]
    dist = shapely.distance(shapely.points(grid.lon[ilon[near]], grid.lat[ilat[near]]), polygons[owner[near]])
    return (
        idx[owner[near]].astype(np.int64),
        (ilat[near] * grid.lon.size + ilon[near]).astype(np.int64),
        np.where(touching[near], dist - 1e6, dist),
    )


def _nearest_valid(weights: SiteWeights, needs: np.ndarray, ring_valid: np.ndarray) -> np.ndarray:
    """For each site where `needs` holds, the index of its ring entry on a valid cell with the smallest
    distance (the first of equals); sites with no valid ring cell get none."""
    candidates = np.flatnonzero(needs[weights.ring_site] & ring_valid) if needs.any() else np.zeros(0, int)
    if candidates.size == 0:
        return candidates
    ranked = candidates[np.lexsort((weights.ring_dist[candidates], weights.ring_site[candidates]))]
    _, first = np.unique(weights.ring_site[ranked], return_index=True)
    return ranked[first]


def reduce_to_sites(
    data: xr.Dataset | xr.DataArray,
    sites: SiteSet,
    *,
    variables: Sequence[str] | None = None,
    mask_variable: str | None = None,
    resolution: float | tuple[float, float] | None = None,
    geometries: Sequence[BaseGeometry] | None = None,
) -> xr.Dataset:
    """Site means of gridded `data` (dims ``lat``, ``lon`` plus any others, e.g. ``time``).

    Returns a Dataset with dims ``site`` plus the other dims of the data, the reduced variables, and the
    per-site ``coverage``, ``covered`` and ``extraction`` described in the module docstring. The valid-cell
    mask used for ``coverage`` and for the nearest-cell fallback comes from `mask_variable` (default: the
    first variable). Only the cells the sites need are read from the data.
    """
    ds = data.to_dataset(name=data.name or "value") if isinstance(data, xr.DataArray) else data
    names = (
        list(variables)
        if variables is not None
        else [v for v in ds.data_vars if {"lat", "lon"} <= set(ds[v].dims)]
    )
    if not names:
        raise ValueError("no variable on (lat, lon) to reduce")
    grid = Grid.from_coords(ds["lat"].values, ds["lon"].values, resolution)
    weights = site_weights(grid, sites, geometries)
    n = weights.n_sites
    nlon = grid.lon.size

    gather = np.unique(np.concatenate([weights.cell, weights.ring_cell]))
    g_ilat, g_ilon = np.divmod(gather, nlon)
    entry_pos = np.searchsorted(gather, weights.cell)
    ring_pos = np.searchsorted(gather, weights.ring_cell)

    values: dict[str, xr.DataArray] = {}
    for name in names:
        da = ds[name]
        picked = da.isel(lat=xr.DataArray(g_ilat, dims="cell"), lon=xr.DataArray(g_ilon, dims="cell"))
        picked = picked.drop_vars([c for c in ("lat", "lon") if c in picked.coords])
        values[name] = picked.transpose("cell", ...).astype(np.float64).load()  # cells × rest, C order

    mask_name = mask_variable or names[0]
    mask = values.get(mask_name)
    if mask is None:
        raise ValueError(f"mask variable {mask_name!r} is not among the reduced variables")
    cell_valid = (
        np.isfinite(mask.values).reshape(gather.size, -1).any(axis=1) if gather.size else np.zeros(0, bool)
    )

    entry_valid = cell_valid[entry_pos]
    valid_area = np.bincount(weights.site[entry_valid], weights.area[entry_valid], minlength=n)
    has_valid = valid_area > 0
    safe_area = np.where(weights.site_area > 0, weights.site_area, 1.0)
    coverage = np.where(has_valid, np.minimum(valid_area / safe_area, 1.0), 0.0)
    extraction = np.where(weights.covered, np.where(has_valid, 0, 2), 3)

    rows = [weights.site[entry_valid]]
    cols = [entry_pos[entry_valid]]
    vals = [(weights.area * weights.cos_lat)[entry_valid]]
    best = _nearest_valid(weights, weights.covered & ~has_valid, cell_valid[ring_pos])
    if best.size:  # sites with no valid cell under them take their nearest valid ring cell
        fallback = weights.ring_site[best]
        rows.append(fallback)
        cols.append(ring_pos[best])
        vals.append(np.ones(best.size))
        extraction[fallback] = 1
        chosen = np.full(n, -1, dtype=np.int64)
        chosen[fallback] = weights.ring_cell[best]
        own = chosen[weights.site] == weights.cell
        own_area = np.bincount(weights.site[own], weights.area[own], minlength=n)
        coverage[fallback] = np.minimum(own_area[fallback] / safe_area[fallback], 1.0)
    matrix = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, gather.size)
    )

    out = {}
    for name, picked in values.items():
        other_dims = [d for d in picked.dims if d != "cell"]
        other_size = int(np.prod([picked.sizes[d] for d in other_dims]))
        flat = picked.values.reshape(gather.size, other_size)
        finite = np.isfinite(flat)
        num = matrix @ np.where(finite, flat, 0.0)
        den = matrix @ finite.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        mean = mean.reshape([n, *(picked.sizes[d] for d in other_dims)])
        coords = {
            k: c for k, c in picked.coords.items() if "cell" not in c.dims and set(c.dims) <= set(other_dims)
        }
        dtype = ds[name].dtype if np.issubdtype(ds[name].dtype, np.floating) else np.float64
        out[name] = xr.DataArray(
            mean.astype(dtype), dims=["site", *other_dims], coords=coords, attrs=dict(ds[name].attrs)
        )

    result = xr.Dataset(out).assign_coords(site=("site", np.array(sites.ids, dtype=object)))
    result["coverage"] = xr.DataArray(
        coverage,
        dims="site",
        attrs={"units": "1", "long_name": "Fraction of the site polygon+buffer covered by valid data cells"},
    )
    result["covered"] = xr.DataArray(
        weights.covered, dims="site", attrs={"long_name": "Site polygon+buffer touches the product's grid"}
    )
    result["extraction"] = xr.DataArray(
        np.array([EXTRACTION_CODES[k] for k in extraction], dtype=object),
        dims="site",
        attrs={"long_name": "How the site value was taken: mean | nearest | none | outside"},
    )
    return result
