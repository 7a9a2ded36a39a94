"""Indicators of a dask-chunked cube (over site) on a distributed LocalCluster equal the eager run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import indicators

distributed = pytest.importorskip("distributed")

IDS = (
    "freeze_thaw_cycles",
    "wet_frost_days",
    "hot_days",
    "thermal_stress_days",
    "max_1day_precipitation",
    "max_5day_precipitation",
)


def _cube(n_sites: int = 20, n_days: int = 3 * 365) -> xr.Dataset:
    rng = np.random.default_rng(5)
    tasmin = rng.normal(5, 9, (n_sites, n_days))
    tasmin[rng.random(tasmin.shape) < 0.05] = np.nan
    pr = rng.gamma(0.5, 6, (n_sites, n_days))
    pr[rng.random(pr.shape) < 0.05] = np.nan
    return xr.Dataset(
        {
            "tasmin": (("site", "time"), tasmin, {"units": "degC"}),
            "tasmax": (("site", "time"), tasmin + rng.uniform(0, 22, tasmin.shape) + 10, {"units": "degC"}),
            "pr": (("site", "time"), pr, {"units": "mm/d"}),
        },
        coords={
            "site": [f"s{i}" for i in range(n_sites)],
            "time": pd.date_range("2001-01-01", periods=n_days, freq="D"),
        },
    )


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_chunked_cube_on_a_local_cluster_equals_the_eager_run(client):
    eager = _cube()
    lazy = eager.chunk({"site": 7, "time": 400})  # time is rechunked to one block by the kernels
    for indicator_id in IDS:
        expected = indicators.compute(indicator_id, eager)
        result = indicators.compute(indicator_id, lazy)
        assert result.chunks is not None, indicator_id  # still lazy: the work runs on the cluster
        computed = client.compute(result).result()
        xr.testing.assert_identical(computed, expected)
