"""The numba FWI kernel and the vectorised SPI fit against the xclim functions they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
import xclim.indices as xci
from hypothesis import given, settings
from hypothesis import strategies as st
from xclim.indices.fire import fire_weather_ufunc

import indicators
from indicators.fire import CODES, cffwis


def _weather(seed: int, n_sites: int, n_days: int, start: str) -> dict[str, xr.DataArray]:
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=n_days, freq="D")

    def da(values: np.ndarray, units: str) -> xr.DataArray:
        return xr.DataArray(values, dims=("site", "time"), coords={"time": time}, attrs={"units": units})

    shape = (n_sites, n_days)
    return {
        "tas": da(rng.uniform(-10, 38, shape), "degC"),
        "hurs": da(rng.uniform(5, 100, shape), "%"),
        "sfcWind": da(rng.uniform(0, 60, shape), "km/h"),
        "pr": da(np.where(rng.random(shape) < 0.35, rng.exponential(7, shape), 0.0), "mm/d"),
    }


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_sites=st.integers(1, 8),
    n_days=st.integers(1, 400),
    start=st.sampled_from(["2001-01-01", "2003-06-15", "2004-11-20"]),
)
def test_the_fwi_kernel_equals_xclim_fire_weather_ufunc_at_every_latitude_band(seed, n_sites, n_days, start):
    w = _weather(seed, n_sites, n_days, start)
    rng = np.random.default_rng(seed + 1)
    lat = xr.DataArray(rng.choice([-50.0, -20.0, 0.0, 20.0, 45.0, 70.0], n_sites), dims="site")
    ffmc0, dmc0, dc0 = (
        xr.DataArray(rng.uniform(lo, hi, n_sites), dims="site") for lo, hi in ((40, 99), (0, 80), (0, 500))
    )
    ours = cffwis(w["tas"], w["hurs"], w["sfcWind"], w["pr"], lat=lat, ffmc0=ffmc0, dmc0=dmc0, dc0=dc0)
    theirs = fire_weather_ufunc(
        tas=w["tas"],
        pr=w["pr"],
        hurs=w["hurs"],
        sfcWind=w["sfcWind"],
        lat=lat,
        ffmc0=ffmc0,
        dmc0=dmc0,
        dc0=dc0,
        indexes=[x for x, _ in CODES.values()],
        season_method=None,
    )
    for name, (xname, _) in CODES.items():
        np.testing.assert_allclose(
            ours[name].values, theirs[xname].values, rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_a_missing_day_neither_stops_the_kernel_nor_changes_the_other_days():
    w = _weather(7, 3, 60, "2010-05-01")
    lat = xr.DataArray([45.0, 45.0, 45.0], dims="site")
    full = cffwis(w["tas"], w["hurs"], w["sfcWind"], w["pr"], lat=lat)
    gappy = {k: v.copy() for k, v in w.items()}
    gappy["hurs"][1, 30] = np.nan
    codes = cffwis(gappy["tas"], gappy["hurs"], gappy["sfcWind"], gappy["pr"], lat=lat)
    assert np.isnan(codes["fwi"].values[1, 30])
    np.testing.assert_array_equal(codes["fwi"].values[[0, 2]], full["fwi"].values[[0, 2]])
    np.testing.assert_array_equal(codes["fwi"].values[1, :30], full["fwi"].values[1, :30])
    # day 31 continues from day 29's codes: stepping day 29 → 31 alone gives the same value
    state = {f"{n}0": codes[n].values[1, 29] for n in ("ffmc", "dmc", "dc")}
    one = cffwis(*(w[k][[1], 31:32] for k in ("tas", "hurs", "sfcWind", "pr")), lat=45.0, **state)
    np.testing.assert_allclose(codes["fwi"].values[1, 31], one["fwi"].values[0, 0], rtol=1e-14)


def _precipitation(seed: int, n_sites: int, years: int, zeros: float, gaps: float) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    time = pd.date_range("1991-01-01", f"{1990 + years}-12-31", freq="D")
    shape = (n_sites, time.size)
    pr = rng.gamma(0.6, 5.0, shape) * (rng.random(shape) < 0.5)
    month_of_day = (time.year - 1991) * 12 + time.month - 1
    dry = rng.random((n_sites, years * 12)) < zeros  # whole dry months: the zero-inflated part
    pr[dry[:, month_of_day]] = 0.0
    pr[rng.random(shape) < gaps] = np.nan
    pr[0, :200] = np.nan  # a site whose first months are missing
    return xr.DataArray(pr, dims=("site", "time"), coords={"time": time}, attrs={"units": "mm/d"})


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_sites=st.integers(1, 6),
    years=st.sampled_from([4, 31]),
    zeros=st.sampled_from([0.0, 0.1, 0.6]),
    gaps=st.sampled_from([0.0, 0.01]),
    window=st.sampled_from([1, 3, 6]),
)
def test_the_vectorised_spi_equals_xclim_standardized_precipitation_index(
    seed, n_sites, years, zeros, gaps, window
):
    pr = _precipitation(seed, n_sites, years, zeros, gaps)
    ours = indicators.compute("drought_spi3", pr.to_dataset(name="pr"), window=window)
    cal = {"cal_start": "1991-01-01", "cal_end": "2020-12-31"} if years == 31 else {}
    theirs = xci.standardized_precipitation_index(
        pr, freq="MS", window=window, dist="gamma", method="APP", fitkwargs={"floc": 0}, **cal
    )
    assert ("not covered" in ours.attrs["calibration"]) == (years != 31)
    np.testing.assert_array_equal(ours.time.values, theirs.time.values)
    np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-9, atol=1e-9)


def test_spi_of_a_month_that_never_rains_is_the_zero_plotting_position_and_dask_gives_the_same():
    pr = _precipitation(3, 4, 4, 0.0, 0.0)
    pr[:, pr.time.dt.month == 7] = 0.0  # July never rains: p0 = 1, every July is +8.21 (clipped)
    ours = indicators.compute("drought_spi3", pr.to_dataset(name="pr"), window=1)
    july = ours.sel(time=ours.time.dt.month == 7).values
    np.testing.assert_array_equal(july, np.full(july.shape, 8.21))
    lazy = indicators.compute("drought_spi3", pr.chunk({"site": 2}).to_dataset(name="pr"), window=1)
    assert lazy.chunks is not None
    xr.testing.assert_identical(lazy.compute(), ours)
