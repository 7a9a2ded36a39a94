"""Zonal extraction: a 0.1° European grid × 365 days over 10,000 polygons.

`monitor.extract.reduce_to_sites` (exactextract weights, one sparse product for all sites and days) against
a per-polygon loop with `rasterio.mask.mask` (crop to the polygon, all touched cells, mean of each day), as a
researcher would write it. The loop runs on a subset of the polygons and is extrapolated linearly to all of
them (it is linear in the number of polygons); the printout says so. The two do not give the same numbers
(area-weighted exact coverage vs unweighted touched cells), so only the time is compared.

Run: `python -m benchmarks.extraction [--sites 10000] [--loop-sites 300]`.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import rasterio
import rasterio.mask
import xarray as xr
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from benchmarks.common import european_sites, machine, timed
from monitor import extract

#: The grid: 0.1° over Europe (cell centres).
WEST, SOUTH, EAST, NORTH, RES = -25.0, 34.0, 45.0, 72.0, 0.1


def build_grid(days: int = 365, seed: int = 0) -> xr.Dataset:
    """A float32 (time, lat, lon) temperature-like field on the 0.1° European grid, latitude descending."""
    lat = np.round(np.arange(NORTH - RES / 2, SOUTH, -RES), 6)
    lon = np.round(np.arange(WEST + RES / 2, EAST, RES), 6)
    rng = np.random.default_rng(seed)
    values = rng.normal(10.0, 5.0, (days, lat.size, lon.size)).astype(np.float32)
    time = pd.date_range("2020-01-01", periods=days, freq="D")
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), values, {"units": "degC"})},
        coords={"time": time, "lat": lat, "lon": lon},
    )


def rasterio_loop(ds: xr.Dataset, geometries: list) -> np.ndarray:
    """Per polygon: rasterio mask (crop, all touched), then the mean of each day's cells."""
    values = ds["tas"].values
    days, nlat, nlon = values.shape
    transform = from_origin(WEST, NORTH, RES, RES)
    profile = {
        "driver": "GTiff",
        "width": nlon,
        "height": nlat,
        "count": days,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": np.nan,
    }
    out = np.empty((len(geometries), days))
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(values)
        with memfile.open() as src:
            for i, geom in enumerate(geometries):
                data, _ = rasterio.mask.mask(src, [geom], crop=True, all_touched=True, filled=True)
                out[i] = np.nanmean(data.reshape(days, -1), axis=1)
    return out


def run(n_sites: int, loop_sites: int) -> None:
    ds, t_grid = timed(build_grid)
    sites = european_sites(n_sites)
    print(
        f"\ngrid {ds.sizes['lat']} x {ds.sizes['lon']} cells (0.1°) x {ds.sizes['time']} days, "
        f"{n_sites:,} polygons (built in {t_grid:.0f} s)"
    )
    extract._CACHE.clear()
    cold, t_cold = timed(lambda: extract.reduce_to_sites(ds, sites))
    warm, t_warm = timed(lambda: extract.reduce_to_sites(ds, sites))
    np.testing.assert_array_equal(cold["tas"].values, warm["tas"].values)
    geoms = sites.geometries(buffered=True)[:loop_sites]
    loop, t_loop = timed(lambda: rasterio_loop(ds, geoms))
    t_loop_all = t_loop * n_sites / len(geoms)
    inside_one_cell = np.isclose(loop, cold["tas"].values[: len(geoms)], rtol=1e-5).all(axis=1).mean()
    site_days = n_sites * ds.sizes["time"]
    print(f"monitor.extract, weights computed: {t_cold:7.2f} s ({site_days / t_cold:12,.0f} site-days/s)")
    print(f"monitor.extract, weights cached:   {t_warm:7.2f} s ({site_days / t_warm:12,.0f} site-days/s)")
    print(
        f"rasterio mask loop: {t_loop:.2f} s for {len(geoms)} polygons, extrapolated to {n_sites:,}: "
        f"{t_loop_all:.1f} s"
    )
    ratio_cold, ratio_warm = t_loop_all / t_cold, t_loop_all / t_warm
    print(f"ratio loop / extract: {ratio_cold:.1f}x (weights computed), {ratio_warm:.1f}x (cached)")
    print(f"(same values for the {inside_one_cell:.0%} of looped polygons lying inside one cell)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10000)
    parser.add_argument("--loop-sites", type=int, default=300)
    args = parser.parse_args(argv)
    print(machine())
    run(args.sites, args.loop_sites)


if __name__ == "__main__":
    main()
