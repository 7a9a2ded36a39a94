"""The zonal reduction: a hand-made grid with known answers, and an independent per-polygon computation."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import xarray as xr
from shapely.geometry import Polygon, box

from monitor import extract
from monitor.extract import Grid, reduce_to_sites, site_weights
from sites import Site, SiteSet

LAT = np.array([52.6, 52.5, 52.4, 52.3])  # north first, as ERA5 files
LON = np.array([13.0, 13.1, 13.2, 13.3, 13.4])


def grid_data(values: np.ndarray, lat=LAT, lon=LON) -> xr.Dataset:
    return xr.Dataset(
        {"v": (("time", "lat", "lon"), values)},
        coords={"time": np.arange(values.shape[0]), "lat": lat, "lon": lon},
    )


def site(site_id: str, geom, **kw) -> Site:
    return Site(id=site_id, name=site_id, geometry=geom, **kw)


def test_hand_made_grid_means_coverage_and_fallbacks():
    cells = np.arange(20, dtype=float).reshape(4, 5)
    cells[0, 0] = np.nan  # a sea cell (north-west corner)
    data = grid_data(np.stack([cells, cells + 100]))
    sites = SiteSet(
        [
            site("inside-one-cell", box(13.21, 52.41, 13.22, 52.42)),  # smaller than a cell: cell (2, 2)
            site("two-cells", box(13.10, 52.35, 13.20, 52.45)),  # halves of cells (2, 1) and (2, 2)
            site("quarters", box(13.10, 52.40, 13.20, 52.50)),  # quarters of (1, 1), (1, 2), (2, 1), (2, 2)
            site("sea", box(12.95, 52.55, 13.05, 52.65)),  # exactly cell (0, 0): sea
            site("coast", box(12.96, 52.52, 13.04, 52.58)),  # half on the sea cell (0, 0), half on (1, 0)
            site("outside", box(20.0, 40.0, 20.1, 40.1)),
        ]
    )
    out = reduce_to_sites(data, sites)
    v = out["v"].sel(time=0).values
    assert v[0] == pytest.approx(12.0)
    # equal areas, cos(lat) of the same row: plain mean of cells 11 and 12
    assert v[1] == pytest.approx(11.5)
    # four quarters: weights ∝ cos(lat) of their rows
    w1, w2 = np.cos(np.deg2rad(52.5)), np.cos(np.deg2rad(52.4))
    assert v[2] == pytest.approx((w1 * (6 + 7) + w2 * (11 + 12)) / (2 * w1 + 2 * w2))
    # the sea cell is NaN: the nearest valid neighbour touching the site is taken
    assert out["extraction"].values[3] == "nearest"
    assert out["coverage"].values[3] == pytest.approx(0.0)
    assert v[3] in (1.0, 5.0)
    # the coastal site: its land part is valid, weights renormalised over it, coverage = land share
    assert v[4] == pytest.approx(5.0)
    assert out["coverage"].values[4] == pytest.approx(0.5, abs=1e-6)
    assert out["extraction"].values[4] == "mean"
    # outside the grid: not covered, no value
    assert not out["covered"].values[5]
    assert np.isnan(v[5])
    assert out["extraction"].values[5] == "outside"
    assert list(out["covered"].values[:5]) == [True] * 5
    assert out["coverage"].values[:3] == pytest.approx([1.0, 1.0, 1.0])
    # the second time step follows the first
    assert out["v"].sel(time=1).values[0] == pytest.approx(112.0)


def test_nan_at_one_time_step_renormalises_that_step_only():
    cells = np.ones((2, 4, 5))
    cells[:, 2, 2] = 3.0
    cells[1, 2, 1] = np.nan  # cell (2, 1) missing at time 1 only
    out = reduce_to_sites(grid_data(cells), SiteSet([site("s", box(13.10, 52.35, 13.20, 52.45))]))
    assert out["v"].values[0].tolist() == pytest.approx([2.0, 3.0])
    assert out["coverage"].values[0] == pytest.approx(1.0)


def test_inside_the_grid_but_no_valid_cell_within_reach():
    cells = np.full((1, 4, 5), np.nan)
    cells[0, 0, 4] = 1.0  # the only valid cell, far from the site
    out = reduce_to_sites(grid_data(cells), SiteSet([site("s", box(13.01, 52.31, 13.02, 52.32))]))
    assert out["extraction"].values.tolist() == ["none"]
    assert out["covered"].values.tolist() == [True]
    assert out["coverage"].values.tolist() == [0.0]
    assert np.isnan(out["v"].values).all()


def test_ascending_latitudes_and_single_cell_grids():
    cells = np.arange(20, dtype=float).reshape(4, 5)
    down = grid_data(cells[None])
    up = grid_data(cells[::-1][None], lat=LAT[::-1])
    sites = SiteSet([site("a", box(13.15, 52.35, 13.25, 52.45)), site("b", box(13.31, 52.51, 13.32, 52.52))])
    assert reduce_to_sites(up, sites)["v"].values == pytest.approx(reduce_to_sites(down, sites)["v"].values)
    one = xr.Dataset(
        {"v": (("time", "lat", "lon"), np.full((1, 1, 1), 7.0))},
        coords={"time": [0], "lat": [40.0], "lon": [-8.0]},
    )
    pg = SiteSet([site("pg", box(-8.24, 39.94, -8.22, 39.96))])
    with pytest.raises(ValueError, match="resolution"):
        reduce_to_sites(one, pg)
    assert reduce_to_sites(one, pg, resolution=0.5)["v"].values[0, 0] == pytest.approx(7.0)
    assert not reduce_to_sites(one, pg, resolution=0.25)["covered"].values[0]


def _per_polygon(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, geom, d: float) -> tuple[float, float]:
    """Independent reference: shapely intersection area × cos(lat) per cell, one polygon at a time."""
    num = den = covered_area = 0.0
    for i, y in enumerate(lat):
        for j, x in enumerate(lon):
            a = geom.intersection(box(x - d / 2, y - d / 2, x + d / 2, y + d / 2)).area
            if a <= 0 or not np.isfinite(values[i, j]):
                continue
            w = a * np.cos(np.deg2rad(y))
            num += w * values[i, j]
            den += w
            covered_area += a
    return (num / den if den else np.nan), covered_area / geom.area


def test_matches_a_per_polygon_computation():
    rng = np.random.default_rng(42)
    d = 0.25
    lat = np.round(45.0 - d * np.arange(24), 3)
    lon = np.round(5.0 + d * np.arange(30), 3)
    values = rng.normal(10, 3, size=(lat.size, lon.size))
    values[rng.random(values.shape) < 0.15] = np.nan
    geoms = []
    for _ in range(25):
        cx, cy = rng.uniform(5.2, 12.0), rng.uniform(39.8, 44.8)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radii = rng.uniform(0.05, 0.9, 7)
        geoms.append(Polygon(np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]).buffer(0))
    geoms.append(shapely.MultiPolygon([box(6.0, 41.0, 6.3, 41.2), box(8.05, 42.02, 8.1, 42.07)]))
    sites = SiteSet(site(f"p{i}", g) for i, g in enumerate(geoms))
    out = reduce_to_sites(xr.Dataset({"v": (("lat", "lon"), values)}, coords={"lat": lat, "lon": lon}), sites)
    for i, g in enumerate(geoms):
        expected, coverage = _per_polygon(values, lat, lon, g, d)
        if out["extraction"].values[i] == "mean":
            assert out["v"].values[i] == pytest.approx(expected, rel=1e-6), f"site {i}"
            assert out["coverage"].values[i] == pytest.approx(coverage, abs=1e-6), f"site {i}"
        else:
            assert np.isnan(expected)


def test_many_sites_on_invalid_cells_take_their_own_nearest_valid_cell():
    """The fallback of every site at once (one vectorised pass) against a brute-force search per site:
    each small site lies inside one NaN cell and takes the valid one of its 8 neighbours whose centre
    is nearest to it."""
    rng = np.random.default_rng(7)
    d = 0.1
    lat = np.round(50.0 - d * np.arange(12), 3)
    lon = np.round(2.0 + d * np.arange(12), 3)
    values = rng.normal(10, 3, size=(lat.size, lon.size))
    invalid = rng.random(values.shape) < 0.5
    values[invalid] = np.nan
    geoms, expected = [], []
    for i, j in zip(*np.nonzero(invalid), strict=True):
        if not (0 < i < lat.size - 1 and 0 < j < lon.size - 1):
            continue
        x, y = lon[j] + rng.uniform(-0.04, 0.03), lat[i] + rng.uniform(-0.04, 0.03)
        geom = box(x, y, x + 0.005, y + 0.005)
        candidates = [
            (shapely.distance(shapely.Point(lon[j + b], lat[i + a]), geom), values[i + a, j + b])
            for a in (-1, 0, 1)
            for b in (-1, 0, 1)
            if np.isfinite(values[i + a, j + b])
        ]
        geoms.append(geom)
        expected.append(min(candidates)[1] if candidates else np.nan)
    assert len(geoms) > 20
    sites = SiteSet(site(f"s{k}", g) for k, g in enumerate(geoms))
    out = reduce_to_sites(xr.Dataset({"v": (("lat", "lon"), values)}, coords={"lat": lat, "lon": lon}), sites)
    expected = np.array(expected)
    assert out["v"].values == pytest.approx(expected, nan_ok=True)
    assert out["extraction"].values.tolist() == ["nearest" if np.isfinite(e) else "none" for e in expected]
    assert out["coverage"].values == pytest.approx(np.zeros(len(geoms)))


def _rings_one_by_one(grid: Grid, geoms, covered):
    """Reference: the fallback candidates polygon by polygon (cells of the bounds grown by one cell that
    are within one cell of a touching cell), as `_rings` computes them for every polygon at once."""
    out_site, out_cell, out_dist = [], [], []
    for i, geom in enumerate(geoms):
        if not covered[i]:
            continue
        w, s, e, n = geom.bounds
        ilat = np.flatnonzero(
            (grid.lat + grid.dlat / 2 >= s - grid.dlat) & (grid.lat - grid.dlat / 2 <= n + grid.dlat)
        )
        ilon = np.flatnonzero(
            (grid.lon + grid.dlon / 2 >= w - grid.dlon) & (grid.lon - grid.dlon / 2 <= e + grid.dlon)
        )
        touching = [
            (a, b)
            for a in ilat
            for b in ilon
            if grid.cell_boxes(np.array([a]), np.array([b]))[0].intersects(geom)
        ]
        for la in ilat:
            for lo in ilon:
                if not any(abs(la - a) <= 1 and abs(lo - b) <= 1 for a, b in touching):
                    continue
                dist = shapely.Point(grid.lon[lo], grid.lat[la]).distance(geom)
                out_site.append(i)
                out_cell.append(la * grid.lon.size + lo)
                out_dist.append(dist - 1e6 if (la, lo) in touching else dist)
    return np.array(out_site, dtype=np.int64), np.array(out_cell, dtype=np.int64), np.array(out_dist)


@pytest.mark.parametrize("lat_step, lon_step", [(-0.25, 0.25), (0.25, 0.25), (-0.25, -0.25)])
def test_fallback_rings_of_every_site_at_once_equal_one_by_one(lat_step, lon_step):
    rng = np.random.default_rng(3)
    lat = np.round(42.0 + lat_step * np.arange(14), 3)
    lon = np.round(6.0 + lon_step * np.arange(16), 3)
    grid = Grid.from_coords(lat, lon)
    west, south, east, north = grid.bounds
    geoms = []
    for _ in range(30):  # polygons inside, across the edge and outside the grid
        cx, cy = rng.uniform(west - 0.5, east + 0.5), rng.uniform(south - 0.5, north + 0.5)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
        radii = rng.uniform(0.01, 0.6, 6)
        geoms.append(Polygon(np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]).buffer(0))
    geoms.append(
        shapely.MultiPolygon(
            [
                box(west + 0.3, south + 0.3, west + 0.4, south + 0.4),
                box(east - 0.6, north - 0.6, east - 0.55, north - 0.55),
            ]
        )
    )
    covered = np.asarray(shapely.intersects(np.asarray(geoms, dtype=object), box(*grid.bounds)))
    assert 5 < covered.sum() < len(geoms)
    ours = extract._rings(grid, geoms, covered)
    expected = _rings_one_by_one(grid, geoms, covered)
    np.testing.assert_array_equal(ours[0], expected[0])
    np.testing.assert_array_equal(ours[1], expected[1])
    np.testing.assert_allclose(ours[2], expected[2], rtol=0, atol=1e-9)


def test_weights_are_cached_per_grid_and_site_set(monkeypatch):
    grid = Grid.from_coords(LAT, LON)
    sites = SiteSet([site("a", box(13.15, 52.35, 13.25, 52.45))])
    first = site_weights(grid, sites)
    calls = []
    monkeypatch.setattr(extract, "_compute_weights", lambda *a: calls.append(a))
    assert site_weights(Grid.from_coords(LAT.copy(), LON.copy()), sites) is first
    assert calls == []
    other = SiteSet([site("a", box(13.15, 52.35, 13.26, 52.45))])
    site_weights(grid, other)
    assert len(calls) == 1
    # ids and geometries are hashed with their lengths: ("ab", "c") is not ("a", "bc")
    g = [box(13.15, 52.35, 13.25, 52.45), box(13.2, 52.4, 13.3, 52.5)]
    assert extract._geometries_key(["ab", "c"], g) != extract._geometries_key(["a", "bc"], g)
    assert extract._geometries_key(["a", "b"], g) != extract._geometries_key(["a", "b"], g[::-1])
    assert extract._geometries_key(["a", "b"], g) == extract._geometries_key(["a", "b"], list(g))


def test_irregular_grid_is_refused():
    with pytest.raises(ValueError, match="regular"):
        Grid.from_coords(np.array([50.0, 50.1, 50.3]), LON)


def test_wkb_source_and_array_writer_give_what_exactextract_gives_a_geodataframe():
    """The polygons handed to exactextract as WKB and read back as arrays: the same cells and fractions as
    its own GeoPandas source and pandas writer: polygons, holes, multipolygons, polygons off the grid."""
    import geopandas as gpd
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource
    from pyproj import CRS

    from monitor.exactextract_io import cell_coverage

    wkt = CRS.from_epsg(4326).to_wkt()
    raster = NumPyRasterSource(np.zeros((40, 50), dtype=np.float32), 5.0, 40.0, 10.0, 44.0, srs_wkt=wkt)
    rng = np.random.default_rng(9)
    geoms = [
        box(x, y, x + w, y + w) for x, y, w in rng.uniform((4.8, 39.8, 0.01), (10.0, 44.0, 0.5), (40, 3))
    ]
    geoms.append(box(6.0, 41.0, 7.0, 42.0).difference(box(6.3, 41.3, 6.6, 41.6)))  # a hole
    geoms.append(shapely.MultiPolygon([box(6.0, 41.0, 6.3, 41.2), box(8.05, 42.02, 8.1, 42.07)]))
    geoms.append(box(20.0, 20.0, 21.0, 21.0))  # off the grid
    cells, fracs = cell_coverage(raster, geoms, wkt)
    frame = gpd.GeoDataFrame({"i": np.arange(len(geoms))}, geometry=geoms, crs="EPSG:4326")
    expected = exact_extract(raster, frame, ["cell_id", "coverage"], output="pandas")
    assert len(cells) == len(fracs) == len(geoms)
    assert sum(len(c) for c in cells) > 100 and len(cells[-1]) == 0
    for i in range(len(geoms)):
        np.testing.assert_array_equal(cells[i], expected["cell_id"][i])
        np.testing.assert_array_equal(fracs[i], expected["coverage"][i])
