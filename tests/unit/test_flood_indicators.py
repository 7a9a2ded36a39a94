"""Flood indicators: GloFAS return-period categories (given thresholds or a Gumbel/L-moment fit) and CEMS
Rapid Mapping activations.

The GloFAS thresholds and colours are published; the L-moment fit is checked against a hand calculation
written out below and against the parameters of a large Gumbel sample; the level mapping is a project
choice (provisional).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import indicators.flood as flood
from indicators.core import CategoryLevels, classify, compute, get, level_name
from indicators.errors import IndicatorInputError


def series(values, time, units="m3 s-1", name="dis24") -> xr.Dataset:
    arr = np.atleast_2d(np.asarray(values, dtype=float))
    return xr.Dataset(
        {name: (("site", "time"), arr, {"units": units})},
        coords={"site": [f"s{i}" for i in range(arr.shape[0])], "time": pd.DatetimeIndex(time)},
    )


def per_site(values, units="m3 s-1", sites=None) -> xr.DataArray:
    values = np.asarray(values, dtype=float)
    sites = sites or [f"s{i}" for i in range(values.size)]
    return xr.DataArray(values, dims="site", coords={"site": sites}, attrs={"units": units})


# --- declarations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("indicator_id", ["flood_return_period", "ems_activation"])
def test_declarations(indicator_id):
    spec = get(indicator_id)
    assert spec.family == "emergency" and spec.version == "1" and spec.freq == "D" and spec.units == "1"
    assert isinstance(spec.levels, CategoryLevels) and spec.references and spec.provisional
    assert len(spec.description) > 100 and spec.provisional_note
    assert spec.history == (indicator_id == "flood_return_period")
    for name, param in spec.parameters.items():
        assert param.description
        assert (param.default is None) == name.startswith(("dis24_rp", "ems_"))


def test_flood_levels_follow_the_glofas_colours():
    names = [level_name(c) for c in classify("flood_return_period", [0, 1, 2, 3, np.nan])]
    assert names == ["none", "moderate", "high", "severe", "no_data"]
    assert [level_name(c) for c in classify("ems_activation", [0, 1, 2, np.nan])] == [
        "none",
        "high",
        "severe",
        "no_data",
    ]


# --- Gumbel / L-moments -------------------------------------------------------------------------------


def test_gumbel_l_moment_fit_by_hand():
    # maxima 10, 30, 20, 40 → sorted 10, 20, 30, 40; b0 = 25;
    # b1 = (0·10 + 1/3·20 + 2/3·30 + 1·40)/4 = (6.667 + 20 + 40)/4 = 16.667; λ2 = 2 b1 − b0 = 8.333
    # α = λ2/ln 2 = 12.022; ξ = 25 − 0.5772·12.022 = 18.061; x_T = ξ − α ln(−ln(1 − 1/T))
    am = xr.DataArray([[10.0, 30.0, 20.0, 40.0]], dims=("site", "time"), attrs={"units": "m3 s-1"})
    levels = flood.gumbel_return_levels(am, (2, 5, 20), min_years=4)
    alpha = (2 * (20 / 3 + 20 + 40) / 4 - 25) / np.log(2)
    xi = 25 - np.euler_gamma * alpha
    expected = [xi - alpha * np.log(-np.log(1 - 1 / t)) for t in (2, 5, 20)]
    np.testing.assert_allclose(levels.values[0], expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [22.467, 36.093, 53.770], atol=1e-3)
    assert levels.dims == ("site", "return_period") and list(levels.return_period.values) == [2, 5, 20]
    assert np.isnan(flood.gumbel_return_levels(am, min_years=5).values).all()


def test_gumbel_fit_recovers_the_parameters_of_a_large_sample_and_ignores_nan():
    loc, scale = 300.0, 80.0
    sample = stats.gumbel_r.rvs(loc=loc, scale=scale, size=(2, 20_000), random_state=3)
    sample[1, ::3] = np.nan
    am = xr.DataArray(sample, dims=("site", "time"))
    levels = flood.gumbel_return_levels(am).values
    expected = stats.gumbel_r.ppf(1 - 1 / np.array([2, 5, 20]), loc=loc, scale=scale)
    np.testing.assert_allclose(levels, np.vstack([expected, expected]), rtol=0.01)


def test_annual_maxima_skip_incomplete_years():
    time = pd.date_range("2001-01-01", "2003-06-30", freq="D")
    q = np.ones(time.size)
    q[time == "2001-05-01"] = 50.0
    q[time == "2003-03-01"] = 90.0  # in a half year: not a maximum of the fit
    q[(time.year == 2002) & (time.month <= 3)] = np.nan  # 275 valid days
    am = flood.annual_maxima(series(q, time).dis24, min_days=300)
    np.testing.assert_array_equal(am.values[0], [50.0, np.nan, np.nan])
    assert flood.annual_maxima(series(q, time).dis24, min_days=150).values[0].tolist() == [50.0, 1.0, 90.0]


# --- flood_return_period ------------------------------------------------------------------------------


def test_categories_against_given_thresholds_with_inclusive_bounds():
    time = pd.date_range("2026-10-28", periods=7, freq="D")
    q = [[10, 99.9, 100, 150, 199, 200, np.nan], [10, 10, 10, 10, 10, 10, 10]]
    ds = series(q, time)
    res = compute(
        "flood_return_period",
        ds,
        dis24_rp2=per_site([100, 5]),
        dis24_rp5=per_site([150, 8]),
        dis24_rp20=per_site([200, 9]),
    )
    np.testing.assert_array_equal(res.values, [[0, 0, 1, 2, 2, 3, np.nan], [3] * 7])
    assert res.threshold_source.values.tolist() == ["glofas", "glofas"]
    assert res.attrs["units"] == "1" and res.attrs["flag_meanings"].split()[-1] == "above_20y"


def test_thresholds_in_other_units_and_per_day():
    time = pd.date_range("2026-10-28", periods=3, freq="D")
    ds = series([[120.0, 120.0, 120.0]], time)
    rp = xr.DataArray(
        [[100_000.0, 130_000.0, 100_000.0]],
        dims=("site", "time"),
        coords={"site": ["s0"], "time": time},
        attrs={"units": "L s-1"},
    )
    res = compute("flood_return_period", ds, dis24_rp2=rp, dis24_rp5=rp * 10, dis24_rp20=rp * 100)
    np.testing.assert_array_equal(res.values, [[1, 0, 1]])
    with pytest.raises(IndicatorInputError, match="dis24_rp5"):
        compute("flood_return_period", ds, dis24_rp2=rp, dis24_rp5=rp.assign_attrs(units="degC"))


def _gumbel_record(rng, n_sites: int, years: int = 30) -> xr.Dataset:
    time = pd.date_range("1991-01-01", periods=365 * years, freq="D")
    base = rng.gamma(2.0, 20.0, (n_sites, time.size))
    return series(base, time)


def test_without_thresholds_the_site_record_is_fitted_and_reported():
    ds = _gumbel_record(np.random.default_rng(5), 3)
    ds["dis24"][2, :] = np.nan
    ds["dis24"][1, : 365 * 22] = np.nan  # 8 complete years < 10
    res = compute("flood_return_period", ds)
    assert res.threshold_source.values.tolist() == ["fitted", "none", "none"]
    assert np.isnan(res.values[1:]).all()
    levels = flood.gumbel_return_levels(flood.annual_maxima(ds.dis24)).values[0]
    q = ds.dis24.values[0]
    expected = (q >= levels[0]).astype(float) + (q >= levels[1]) + (q >= levels[2])
    np.testing.assert_array_equal(res.values[0], expected)
    # about half the years exceed the 2-year flood
    exceed = (res[0].resample(time="YS").max() >= 1).mean()
    assert 0.25 <= float(exceed) <= 0.75
    relaxed = compute("flood_return_period", ds, min_years=8).isel(site=1)
    assert relaxed.threshold_source.item() == "fitted"
    assert int(relaxed.notnull().sum()) == int(ds.dis24[1].notnull().sum())


def test_incomplete_given_thresholds_fall_back_to_the_fit_without_mixing():
    ds = _gumbel_record(np.random.default_rng(9), 2)
    fitted = compute("flood_return_period", ds)
    rp = per_site([1e9, np.nan])
    res = compute("flood_return_period", ds, dis24_rp2=rp, dis24_rp5=rp, dis24_rp20=rp)
    assert res.threshold_source.values.tolist() == ["glofas", "fitted"]
    assert (res.values[0] == 0).all()  # given thresholds above any flow
    np.testing.assert_array_equal(res.values[1], fitted.values[1])
    only_two = compute("flood_return_period", ds, dis24_rp2=per_site([1e9, 1e9]))
    np.testing.assert_array_equal(only_two.values, fitted.values)  # an incomplete set is not used
    assert only_two.threshold_source.values.tolist() == ["fitted", "fitted"]


def test_flood_optional_inputs_are_taken_from_a_cube():
    time = pd.date_range("2026-10-28", periods=2, freq="D")
    ds = series([[1.0, 2.0]], time)
    assert flood.optional_inputs("flood_return_period", ds) == {}
    ds["dis24_rp2"] = per_site([1.5])
    assert set(flood.optional_inputs("flood_return_period", ds)) == {"dis24_rp2"}
    assert flood.optional_inputs("ems_activation", ds) == {}


# --- ems_activation -----------------------------------------------------------------------------------


def test_ems_activation_categories_and_a_sparse_flooded_fraction():
    time = pd.date_range("2026-10-29", periods=5, freq="D")
    ds = series([[0, 1, 2, 1, np.nan], [0, 0, 0, 0, 0]], time, units="1", name="ems_active")
    flooded = xr.DataArray(
        [[0.2, 0.0], [0.0, 0.05]],
        dims=("site", "time"),
        coords={"site": ["s0", "s1"], "time": time[[2, 3]]},
        attrs={"units": "1"},
    )
    plain = compute("ems_activation", ds)
    np.testing.assert_array_equal(plain.values, [[0, 1, 1, 1, np.nan], [0, 0, 0, 0, 0]])
    res = compute("ems_activation", ds.assign(ems_flooded_fraction=flooded), ems_flooded_fraction=flooded)
    np.testing.assert_array_equal(res.values, [[0, 1, 2, 1, np.nan], [0, 0, 0, 2, 0]])
    assert (
        res.dims == ("site", "time")
        and res.attrs["flag_meanings"] == "no_activation activation activation_flooded"
    )
    cube = ds.assign(ems_flooded_fraction=flooded.reindex(time=time))
    kwargs = flood.optional_inputs("ems_activation", cube)
    np.testing.assert_array_equal(compute("ems_activation", cube, **kwargs).values, res.values)


# --- vectorisation (hypothesis) -----------------------------------------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), position=st.integers(0, 999), given_thresholds=st.booleans())
def test_one_site_alone_equals_the_same_site_in_a_batch_of_1000(seed, position, given_thresholds):
    rng = np.random.default_rng(seed)
    ds = _gumbel_record(rng, 1000, years=12)
    ds["dis24"] = ds.dis24.where(rng.random(ds.dis24.shape) > 0.05)
    kwargs = {}
    if given_thresholds:
        rp2 = per_site(rng.uniform(40, 120, 1000), sites=list(ds.site.values))
        rp2[rng.random(1000) < 0.3] = np.nan
        kwargs = {"dis24_rp2": rp2, "dis24_rp5": rp2 * 1.3, "dis24_rp20": rp2 * 1.8}
    alone = compute(
        "flood_return_period",
        ds.isel(site=[position]),
        **{k: v.isel(site=[position]) for k, v in kwargs.items()},
    )
    together = compute("flood_return_period", ds, **kwargs).isel(site=[position])
    np.testing.assert_array_equal(alone.values, together.values)
    assert alone.threshold_source.values.tolist() == together.threshold_source.values.tolist()

    active = xr.DataArray(
        rng.integers(0, 3, ds.dis24.shape).astype(float), dims=("site", "time"), coords=ds.dis24.coords
    )
    flooded = active.where(rng.random(active.shape) < 0.01) * 0.1
    cube = xr.Dataset({"ems_active": active, "ems_flooded_fraction": flooded})
    one = compute(
        "ems_activation", cube.isel(site=[position]), ems_flooded_fraction=flooded.isel(site=[position])
    )
    many = compute("ems_activation", cube, ems_flooded_fraction=flooded).isel(site=[position])
    np.testing.assert_array_equal(one.values, many.values)
