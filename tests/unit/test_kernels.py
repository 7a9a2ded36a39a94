"""Vectorised kernels against the xclim functions they replace on hot paths."""

import numpy as np
import pandas as pd
import xarray as xr
import xclim.indices as xci
from hypothesis import given, settings
from hypothesis import strategies as st

import indicators


def cube(tasmin: np.ndarray, tasmax: np.ndarray, start: str = "2001-12-20") -> xr.Dataset:
    time = pd.date_range(start, periods=tasmin.shape[1], freq="D")
    coords = {"site": [f"s{i}" for i in range(tasmin.shape[0])], "time": time}
    return xr.Dataset(
        {
            "tasmin": (("site", "time"), tasmin, {"units": "degC"}),
            "tasmax": (("site", "time"), tasmax, {"units": "degC"}),
        },
        coords=coords,
    )


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_sites=st.integers(1, 6),
    n_days=st.integers(3, 80),
    window=st.integers(1, 5),
    freq=st.sampled_from(["YS", "MS"]),
)
def test_heat_wave_days_equal_xclim_total_length(seed, n_sites, n_days, window, freq):
    rng = np.random.default_rng(seed)
    tasmax = rng.uniform(25, 36, (n_sites, n_days))
    tasmin = tasmax - rng.uniform(5, 15, (n_sites, n_days))
    tasmin[rng.random((n_sites, n_days)) < 0.05] = np.nan
    ds = cube(tasmin, tasmax)
    ours = indicators.compute("heat_wave_days", ds, window=window, freq=freq)
    ref = xci.heat_wave_total_length(
        ds.tasmin, ds.tasmax, thresh_tasmin="20 degC", thresh_tasmax="30 degC", window=window, freq=freq
    )
    valid = ours.notnull()
    np.testing.assert_array_equal(ours.where(valid).values, ref.astype(float).where(valid).values)
