"""Vectorised kernels against the xclim functions they replace on hot paths."""

import numpy as np
import pandas as pd
import xarray as xr
import xclim.indices as xci
from hypothesis import given, settings
from hypothesis import strategies as st
from xclim.indices import generic

import indicators
from indicators import kernels


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


# --- period reductions: each kernel against the xclim / xarray computation it replaces ---------------

PERIODS = settings(max_examples=12, deadline=None)


def _gappy(
    rng: np.random.Generator, lo: float, hi: float, shape: tuple[int, int], share: float
) -> np.ndarray:
    """Uniform values with a share of NaN days and, on one site, a whole NaN stretch (empty periods)."""
    a = rng.uniform(lo, hi, shape)
    a[rng.random(shape) < share] = np.nan
    a[0, 40:120] = np.nan
    return a


def _starts(da: xr.DataArray, freq: str) -> tuple[np.ndarray, np.ndarray]:
    labels = da.time.resample(time=freq).first().time.values
    return labels, kernels.period_starts(da.time.values, labels)


def _has_data(*das: xr.DataArray, freq: str) -> np.ndarray:
    valid = das[0].notnull()
    for da in das[1:]:
        valid = valid & da.notnull()
    return (valid.resample(time=freq).sum() > 0).values


def _equal(ours: np.ndarray, theirs: np.ndarray, rtol: float = 0.0) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0.0, equal_nan=True)


PERIOD_CASES = {
    "seed": st.integers(0, 2**31 - 1),
    "n_sites": st.integers(1, 5),
    "n_days": st.integers(400, 1200),  # two to four years, starting mid-December
    "freq": st.sampled_from(["YS", "MS"]),
    "share": st.sampled_from([0.0, 0.05, 0.3]),
}


@PERIODS
@given(**PERIOD_CASES)
def test_count_per_period_equals_xclim_counts(seed, n_sites, n_days, freq, share):
    rng = np.random.default_rng(seed)
    tasmin = _gappy(rng, -10, 10, (n_sites, n_days), share)
    tasmax = tasmin + rng.uniform(0, 20, (n_sites, n_days))
    tasmax[rng.random(tasmax.shape) < share] = np.nan
    ds = cube(tasmin, tasmax)
    labels, starts = _starts(ds.tasmin, freq)
    has_data = _has_data(ds.tasmin, ds.tasmax, freq=freq)
    valid = ~np.isnan(tasmin) & ~np.isnan(tasmax)
    ours = kernels.count_per_period((tasmin <= 0) & (tasmax > 0), valid, starts)
    theirs = generic.count_level_crossings(ds.tasmin, ds.tasmax, "0 degC", freq, op_low="<=", op_high=">")
    np.testing.assert_array_equal(labels, theirs.time.values)
    _equal(ours, np.where(has_data, theirs.values, np.nan))
    hot = kernels.count_per_period(tasmax > 12.5, ~np.isnan(tasmax), starts)
    theirs = xci.tx_days_above(ds.tasmax, thresh="12.5 degC", freq=freq)
    _equal(hot, np.where(_has_data(ds.tasmax, freq=freq), theirs.values, np.nan))
    # the indicator functions built on the kernel
    ft = indicators.compute("freeze_thaw_cycles", ds, freq=freq)
    _equal(ft.values, ours)
    np.testing.assert_array_equal(ft.time.values, labels)
    dtr = generic.threshold_count(ds.tasmax - ds.tasmin, ">=", 15.0, freq)
    stress = indicators.compute("thermal_stress_days", ds, freq=freq)
    _equal(stress.values, np.where(has_data, dtr.values, np.nan))


@PERIODS
@given(**PERIOD_CASES)
def test_max_and_rolling_sum_per_period_equal_xclim_rx1day_and_rx5day(seed, n_sites, n_days, freq, share):
    rng = np.random.default_rng(seed)
    pr = _gappy(rng, 0, 40, (n_sites, n_days), share) * (rng.random((n_sites, n_days)) < 0.5)
    da = xr.DataArray(
        pr,
        dims=("site", "time"),
        coords={"time": pd.date_range("2001-12-20", periods=n_days, freq="D")},
        attrs={"units": "mm/d"},
    )
    _, starts = _starts(da, freq)
    _equal(kernels.max_per_period(pr, starts), xci.max_1day_precipitation_amount(da, freq=freq).values)
    ours = kernels.max_per_period(kernels.rolling_sum(pr, 5), starts)
    theirs = xci.max_n_day_precipitation_amount(da, window=5, freq=freq)
    _equal(ours, theirs.values, rtol=1e-12)
    rx1 = indicators.compute("max_1day_precipitation", da.to_dataset(name="pr"), freq=freq)
    _equal(rx1.values, xci.max_1day_precipitation_amount(da, freq=freq).values)
    rx5 = indicators.compute("max_5day_precipitation", da.to_dataset(name="pr"), freq=freq)
    _equal(rx5.values, theirs.values, rtol=1e-12)
    total = kernels.sum_per_period(pr, starts)
    expected = da.resample(time=freq).sum().values
    _equal(total, np.where(_has_data(da, freq=freq), expected, np.nan), rtol=1e-12)


@PERIODS
@given(**PERIOD_CASES, window=st.integers(1, 4))
def test_rolling_any_equals_the_xarray_rolling_max_of_wet_frost(seed, n_sites, n_days, freq, share, window):
    rng = np.random.default_rng(seed)
    tasmin = _gappy(rng, -6, 6, (n_sites, n_days), share)
    pr = _gappy(rng, 0, 3, (n_sites, n_days), share)
    ds = cube(tasmin, tasmin).assign(pr=(("site", "time"), pr, {"units": "mm/d"}))
    wet = (ds.pr >= 1.0).where(ds.pr.notnull())
    recent = wet.rolling(time=window, min_periods=1).max() == 1
    np.testing.assert_array_equal(kernels.rolling_any(pr >= 1.0, window), recent.values)
    theirs = ((ds.tasmin <= 0) & recent).resample(time=freq).sum()
    ours = indicators.compute("wet_frost_days", ds, window=window, freq=freq)
    _equal(ours.values, np.where(_has_data(ds.tasmin, ds.pr, freq=freq), theirs.values, np.nan))


def test_an_empty_period_is_nan_and_starts_past_the_end_are_safe():
    starts = np.array([0, 3, 3, 5])  # the second period is empty, the last one too (5 == n)
    values = np.array([[1.0, np.nan, 2.0, 7.0, np.nan]])
    assert np.isnan(kernels.max_per_period(values, starts)[0, [1, 3]]).all()
    np.testing.assert_array_equal(kernels.max_per_period(values, starts)[0, [0, 2]], [2.0, 7.0])
    counts = kernels.count_per_period(values > 1.5, ~np.isnan(values), starts)
    np.testing.assert_array_equal(counts, [[1.0, np.nan, 1.0, np.nan]])
    np.testing.assert_array_equal(kernels.sum_per_period(values, starts), [[3.0, np.nan, 7.0, np.nan]])


def test_float32_cubes_count_exactly_as_xclim_with_thresholds_cast_to_the_data_dtype():
    """75.3 is not a float32: the kernels compare in the data's dtype, as numpy and xclim do."""
    rng = np.random.default_rng(11)
    tasmax = rng.uniform(20, 40, (3, 800)).astype(np.float32)
    tasmax[:, ::7] = np.float32(30.1)  # values next to the threshold
    ds = cube(tasmax - 10, tasmax)
    ours = indicators.compute("hot_days", ds, thresh="30.1 degC")
    theirs = xci.tx_days_above(ds.tasmax, thresh="30.1 degC", freq="MS")
    np.testing.assert_array_equal(ours.values, theirs.values)


@PERIODS
@given(seed=st.integers(0, 2**31 - 1), share=st.sampled_from([0.0, 0.3]), window=st.integers(1, 3))
def test_periods_too_long_for_packed_codes_take_the_numpy_path_with_the_same_result(seed, share, window):
    rng = np.random.default_rng(seed)
    n = kernels._LONGEST + 40
    low = _gappy(rng, -5, 5, (2, n), share)
    high = low + rng.uniform(0, 10, (2, n))
    pr = _gappy(rng, 0, 3, (2, n), share)
    long, short = np.array([0, 20, n - 10]), np.array([0, 20, 20000, n - 10])
    assert kernels._too_long(long, n) and not kernels._too_long(short, n)
    checks = (
        lambda s: kernels.crossing_days(low, high, s, 0.0),
        lambda s: kernels.days_above(high, s, 2.5, ">="),
        lambda s: kernels.range_days(high, low, s, 4.0),
        lambda s: kernels.wet_frost_days(low, pr, s, 0.0, 1.0, window),
        lambda s: kernels.count_per_period(low > 0, ~np.isnan(low), s),
    )
    for check in checks:
        split = check(short)  # the same steps cut into shorter periods, counted by numba
        whole = check(long)
        np.testing.assert_array_equal(whole[:, [0, 2]], split[:, [0, 3]])
        np.testing.assert_array_equal(whole[:, 1], np.nansum(split[:, 1:3], axis=1))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_days=st.integers(1, 120),
    window=st.integers(1, 5),
    share=st.sampled_from([0.0, 0.2, 1.0]),
)
def test_float32_maxima_through_integer_keys_equal_the_float_comparison_kernel(seed, n_days, window, share):
    """The float32 kernel orders the floats' bits as integers: signs, -0.0, ±inf, NaN gaps, empty periods
    and periods shorter than the window give what comparing the floats gives."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 5, (4, n_days)).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, -1e-38, 1e-38], dtype=np.float32)
    picks = rng.random((4, n_days)) < 0.15
    values[picks] = rng.choice(special, picks.sum())
    values[rng.random((4, n_days)) < share * 0.5] = np.nan
    starts = np.sort(rng.integers(0, n_days + 2, rng.integers(1, 8)))
    with np.errstate(invalid="ignore"):  # inf − inf in a window sum is a NaN sum, as it should be
        ours = kernels.max_per_period(values, starts, window)
        generic_ = kernels._shaped(kernels._max_rows(values, starts.astype(np.intp), window), values)
    np.testing.assert_array_equal(ours, generic_)
    assert ours.dtype == np.float64


def test_in_memory_period_reductions_are_labelled_as_apply_ufunc_labels_them(monkeypatch):
    """The in-memory path of `_per_period` gives what the `apply_ufunc` path gives (values, dims, coords,
    attrs), whatever the dim order, also when xarray offers no direct constructor; the result's attrs are
    its own; inputs that need aligning, and dask inputs, take the `apply_ufunc` path."""
    from indicators import climate

    rng = np.random.default_rng(5)
    ds = cube(rng.uniform(-5, 5, (3, 400)), rng.uniform(-5, 10, (3, 400)))
    ds = ds.assign_coords(lat=("site", [45.0, 46.0, 47.0]), step=("time", np.arange(400)))
    ds.tasmin.attrs.update(
        note="kept", standard_name="air_temperature", units_metadata="temperature: on_scale"
    )
    kwargs = {"units": "days", "thresh": 0.0}
    for a, b in ((ds.tasmin, ds.tasmax), (ds.tasmin.T, ds.tasmax.T)):
        assert climate._in_memory_alike((a, b))
        eager = climate._per_period(climate._crossing_days, "MS", a, b, **kwargs)
        lazy = climate._per_period(climate._crossing_days, "MS", a.chunk(), b.chunk(), **kwargs).compute()
        xr.testing.assert_identical(eager, lazy)
        assert eager.dims == a.dims and "step" not in eager.coords and "lat" in eager.coords
        assert eager.attrs == {"units": "days", "note": "kept"}  # a count of days: no temperature's name
        assert eager.xindexes["site"] is a.xindexes["site"]
        eager.attrs["units"] = "changed"
        eager["lat"].attrs["units"] = "changed"
        eager["site"].attrs["edited"] = True
        assert a.attrs["units"] == "degC" and "units" not in ds["lat"].attrs and "edited" not in ds.site.attrs
    direct = climate._per_period(climate._crossing_days, "YS", ds.tasmin, ds.tasmax, **kwargs)
    monkeypatch.delattr(xr.DataArray, "_construct_direct", raising=False)
    public = climate._per_period(climate._crossing_days, "YS", ds.tasmin, ds.tasmax, **kwargs)
    xr.testing.assert_identical(direct, public)
    shifted = ds.tasmax.assign_coords(site=["s1", "s0", "s2"])
    assert not climate._in_memory_alike((ds.tasmin, shifted))
    assert not climate._in_memory_alike((ds.tasmin, ds.tasmax.chunk()))


def test_blocks_of_sites_on_threads_give_the_one_block_result(monkeypatch):
    """`_blockwise` cuts the sites into blocks of about `_BLOCK_BYTES` per input, reduced on a thread pool:
    blocks of 16 rows (the least), uneven at the end, give exactly the single-call result."""
    from indicators import climate

    rng = np.random.default_rng(11)
    low = rng.uniform(-5, 5, (54, 400))
    high = low + rng.uniform(0, 10, (54, 400))
    time = pd.date_range("2001-01-01", periods=400, freq="D").values
    starts = kernels.period_starts(time, time[[0, 200]])
    whole = kernels.crossing_days(low, high, starts, 0.0)
    assert climate._block_rows(low) >= 54  # a real block holds them all
    monkeypatch.setattr(climate, "_BLOCK_BYTES", 1)
    assert climate._block_rows(low) == 16
    calls = []

    def counted(*blocks, **kwargs):
        calls.append(blocks[0].shape[0])
        return kernels.crossing_days(*blocks, **kwargs)

    blocked = climate._blockwise(
        low.reshape(6, 9, 400), high.reshape(6, 9, 400), func=counted, n_out=2, starts=starts, thresh=0.0
    )
    assert sorted(calls) == [6, 16, 16, 16]
    np.testing.assert_array_equal(blocked.reshape(54, 2), whole)
