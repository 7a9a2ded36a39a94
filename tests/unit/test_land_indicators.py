"""Land indicators: NDVI anomaly and encroachment trend, dNBR burn severity, EGMS ground motion and
imperviousness change.

The Key & Benson (2006) class edges are published (cases.json, `dnbr_burn_severity_class`); every other
expected number below is a HAND CALCULATION written out in the test, and the indicators are provisional.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indicators.land as land
from indicators.core import CategoryLevels, Thresholds, classify, compute, get, level_name
from indicators.errors import IndicatorInputError

IDS = (
    "ndvi_anomaly",
    "vegetation_encroachment",
    "burn_severity",
    "burn_severity_high_fraction",
    "ground_motion_velocity",
    "ground_motion_differential",
    "imperviousness_change",
)
HISTORY = {"ndvi_anomaly", "vegetation_encroachment", "imperviousness_change"}
CASES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cases.json"


def one(values) -> float:
    """The single value of a one-element array (one site, one period)."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    assert arr.size == 1, arr.shape
    return float(arr[0])


def cube(time, sites=None, **variables) -> xr.Dataset:
    """A Dataset of (site, time) variables given as name=(units, values)."""
    time = pd.DatetimeIndex(time)
    ds = xr.Dataset(coords={"time": time})
    for name, (units, values) in variables.items():
        arr = np.atleast_2d(np.asarray(values, dtype=float))
        ds[name] = (("site", "time"), arr, {"units": units})
    n = next(iter(ds.data_vars.values())).shape[0]
    return ds.assign_coords(site=sites or [f"s{i}" for i in range(n)])


def hist_cube(counts, edges, time) -> xr.Dataset:
    """A dnbr_hist cube from counts (site, time, bin) and bin edges."""
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    return xr.Dataset(
        {"dnbr_hist": (("site", "time", "dnbr_bin"), counts, {"units": "1"})},
        coords={
            "site": [f"s{i}" for i in range(counts.shape[0])],
            "time": pd.DatetimeIndex(time),
            "dnbr_bin_low": ("dnbr_bin", edges[:-1]),
            "dnbr_bin_high": ("dnbr_bin", edges[1:]),
        },
    )


# --- declarations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("indicator_id", IDS)
def test_declarations_are_complete(indicator_id):
    spec = get(indicator_id)
    assert spec.family == "land" and spec.version == "1"
    assert spec.title and len(spec.description) > 100 and spec.units and spec.inputs
    assert spec.freq in ("MS", "YS") and spec.references
    assert isinstance(spec.levels, Thresholds)
    assert spec.provisional and "project default" in spec.provisional_note
    assert spec.history == (indicator_id in HISTORY)
    for name, param in spec.parameters.items():
        assert param.description, name
    bounds = [b for b in (spec.levels.low, spec.levels.moderate, spec.levels.high, spec.levels.severe)]
    ordered = bounds if spec.levels.direction == "higher_is_worse" else [-b for b in bounds]
    assert ordered == sorted(ordered)


def test_ndvi_anomaly_watches_losses_and_encroachment_watches_growth():
    assert get("ndvi_anomaly").levels.direction == "lower_is_worse"
    assert get("vegetation_encroachment").levels.direction == "higher_is_worse"
    assert [level_name(c) for c in classify("ndvi_anomaly", [0.2, -0.04, -0.05, -0.12, -0.3, np.nan])] == [
        "none",
        "none",
        "low",
        "moderate",
        "severe",
        "no_data",
    ]


# --- NDVI anomaly -------------------------------------------------------------------------------------


def test_ndvi_anomaly_is_the_month_minus_the_same_month_of_the_other_years():
    time = pd.date_range("2018-01-01", "2022-12-31", freq="D")
    ndvi = np.full(time.size, 0.5)
    ndvi[(time.month == 7)] = 0.6
    ndvi[(time.year == 2021) & (time.month == 7)] = 0.3  # a burnt July
    ndvi[(time.year == 2019) & (time.month == 7)] = 0.7
    res = compute("ndvi_anomaly", cube(time, ndvi=("1", ndvi)))
    assert res.attrs["units"] == "1" and res.sizes["time"] == 60
    july = res.sel(time=res.time.dt.month == 7).values[0]
    # hand calculation, Julys 0.6, 0.7, 0.6, 0.3, 0.6: 2018 0.6 - (0.7+0.6+0.3+0.6)/4 = 0.05,
    # 2019 0.7 - (0.6+0.6+0.3+0.6)/4 = 0.175, 2021 0.3 - (0.6+0.7+0.6+0.6)/4 = -0.325
    np.testing.assert_allclose(july, [0.05, 0.175, 0.05, -0.325, 0.05], atol=1e-12)
    np.testing.assert_allclose(res.sel(time=res.time.dt.month == 3).values, 0.0, atol=1e-12)


def test_ndvi_anomaly_masks_missing_days_and_needs_observations_and_years():
    time = pd.date_range("2018-01-01", "2021-12-31", freq="D")
    ndvi = np.where(time.day % 5 == 0, 0.5, np.nan)  # one clear day in five
    ndvi[(time.year == 2021) & (time.month == 5) & (time.day == 10)] = 0.2  # one low day of six in May
    ndvi[(time.year == 2020) & (time.month == 2)] = np.nan  # a fully cloudy month
    ndvi[(time.year == 2019) & (time.month == 3) & (time.day != 10)] = np.nan  # one observation only
    ndvi[(time.year == 2018) & (time.month == 4) & (time.day == 15)] = 1.7  # impossible value: masked
    res = compute("ndvi_anomaly", cube(time, ndvi=("1", ndvi)))
    may_2021 = one(res.sel(time="2021-05-01"))
    assert may_2021 == pytest.approx((5 * 0.5 + 0.2) / 6 - 0.5)
    assert np.isnan(res.sel(time="2020-02-01")).all() and np.isnan(res.sel(time="2019-03-01")).all()
    assert one(res.sel(time="2018-04-01")) == pytest.approx(0.0)  # the impossible 1.7 is not averaged
    # February has data in 2018, 2019 and 2021 only: two other years, fewer than min_years=3
    assert np.isnan(res.sel(time="2018-02-01")).all()
    relaxed = compute("ndvi_anomaly", cube(time, ndvi=("1", ndvi)), min_years=2)
    assert one(relaxed.sel(time="2018-02-01")) == pytest.approx(0.0)
    stricter = compute("ndvi_anomaly", cube(time, ndvi=("1", ndvi)), min_obs=7)  # at most 6 a month
    assert np.isnan(stricter.values).all()


# --- vegetation encroachment --------------------------------------------------------------------------


def test_encroachment_recovers_a_linear_greening_despite_the_seasonal_cycle_and_clouds():
    time = pd.date_range("2016-01-01", "2025-12-31", freq="D")
    rng = np.random.default_rng(7)
    season = 0.2 * np.sin(2 * np.pi * np.asarray(time.day_of_year) / 365.25)
    years = np.asarray(time.year - 2016, dtype=float) + np.asarray(time.day_of_year) / 365.25
    ndvi = np.stack([0.5 + season, 0.5 + season + 0.015 * years, 0.5 + season - 0.004 * years])
    cloudy = rng.random(ndvi.shape) < np.where(np.isin(np.asarray(time.month), [11, 12, 1, 2]), 0.9, 0.5)
    ndvi[cloudy] = np.nan
    res = compute("vegetation_encroachment", cube(time, ndvi=("1", ndvi)))
    assert res.attrs["units"] == "1/decade" and list(res.time.dt.year.values) == list(range(2016, 2026))
    assert np.isnan(res.values[:, :2]).all()  # fewer than 3 annual medians
    np.testing.assert_allclose(res.values[:, 4:], np.array([[0.0], [0.15], [-0.04]]) * np.ones(6), atol=0.01)
    assert [level_name(c) for c in classify("vegetation_encroachment", res.values[:, -1])] == [
        "none",
        "high",
        "none",
    ]
    np.testing.assert_allclose(res.valid_years_fraction.values[0], [0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1, 1, 1])
    assert (res.n_obs.values[:, -1] == np.isfinite(ndvi[:, time.year >= 2021]).sum(axis=1)).all()


def test_encroachment_is_an_exact_least_squares_slope_of_annual_medians():
    time = pd.date_range("2020-01-01", "2024-12-31", freq="D")
    medians = {2020: 0.30, 2021: 0.32, 2022: 0.31, 2023: 0.36, 2024: 0.38}
    ndvi = np.array([medians[y] for y in time.year])
    ndvi[time.year == 2022] = np.nan  # a year without data is skipped, not counted as zero
    res = compute("vegetation_encroachment", cube(time, ndvi=("1", ndvi)))
    x = np.array([0, 1, 3, 4.0])
    y = np.array([0.30, 0.32, 0.36, 0.38])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert one(res.isel(time=-1)) == pytest.approx(10 * slope)
    assert one(res.valid_years_fraction.isel(time=-1)) == pytest.approx(0.8)
    few = compute("vegetation_encroachment", cube(time, ndvi=("1", ndvi)), min_obs_per_year=400)
    assert np.isnan(few.values).all()
    with pytest.raises(IndicatorInputError):
        compute("vegetation_encroachment", cube(time, ndvi=("1", ndvi)), min_years=6)


def test_encroachment_months_parameter_restricts_the_medians():
    time = pd.date_range("2019-01-01", "2023-12-31", freq="D")
    ndvi = np.where(
        np.isin(np.asarray(time.month), [6, 7, 8]), 0.4 + 0.01 * np.asarray(time.year - 2019), 0.3
    )
    summer = compute("vegetation_encroachment", cube(time, ndvi=("1", ndvi)), months=[6, 7, 8])
    assert one(summer.isel(time=-1)) == pytest.approx(0.1)


# --- burn severity ------------------------------------------------------------------------------------

#: dNBR → Key & Benson class, lower bound inclusive (cases.json `dnbr_burn_severity_class`).
KEY_BENSON_CASES = [
    (-0.3, "enhanced_regrowth_high"),
    (-0.25, "enhanced_regrowth_low"),
    (-0.11, "enhanced_regrowth_low"),
    (-0.1, "unburned"),
    (0.099, "unburned"),
    (0.1, "low"),
    (0.269, "low"),
    (0.27, "moderate_low"),
    (0.44, "moderate_high"),
    (0.659, "moderate_high"),
    (0.66, "high"),
    (1.2, "high"),
]


def test_the_embedded_cases_are_those_of_cases_json():
    if not CASES.is_file():
        pytest.skip("shared/reference/cases.json is absent")
    published = [
        (c["inputs"]["dnbr"], c["expected"])
        for c in json.loads(CASES.read_text())
        if c["indicator"] == "dnbr_burn_severity_class"
    ]
    assert sorted(published) == sorted(KEY_BENSON_CASES)


@pytest.mark.parametrize(("dnbr", "expected"), KEY_BENSON_CASES)
def test_key_benson_classes_at_the_published_edges(dnbr, expected):
    edges = [-2.0, dnbr, dnbr + 1e-9, 2.0]  # every pixel in a tiny bin starting at dnbr
    ds = hist_cube([[[0, 50, 0]]], edges, ["2026-09-01"])
    fractions = land.burn_severity_classes(ds.dnbr_hist)
    assert one(fractions.sel(burn_class=expected)) == pytest.approx(1.0)
    burnt = one(compute("burn_severity", ds))
    assert burnt == (1.0 if dnbr >= 0.10 else 0.0)
    assert one(compute("burn_severity_high_fraction", ds)) == (1.0 if dnbr >= 0.44 else 0.0)


def test_burnt_fractions_from_a_histogram_with_bins_across_class_edges():
    # bins [-inf,-0.5) [-0.5,0) [0,0.2) [0.2,0.5) [0.5,inf): 10 pixels in [0,0.2), 10 in [0.2,0.5)
    edges = [-np.inf, -0.5, 0.0, 0.2, 0.5, np.inf]
    ds = hist_cube([[[0, 0, 10, 10, 0]]], edges, ["2026-09-01"])
    res = compute("burn_severity", ds)
    # hand calculation, uniform within bins: [0.1,0.2) gives 5, [0.2,0.5) all 10 → 15/20
    assert one(res) == pytest.approx(0.75)
    assert one(res.fraction_unburned) == pytest.approx(0.25)
    assert one(res.fraction_low) == pytest.approx((5 + 10 * 0.07 / 0.3) / 20)
    assert one(res.fraction_moderate_low) == pytest.approx(10 * 0.17 / 0.3 / 20)
    assert one(compute("burn_severity_high_fraction", ds)) == pytest.approx(10 * 0.06 / 0.3 / 20)
    classes = land.burn_severity_classes(ds.dnbr_hist)
    assert one(classes.sum("burn_class")) == pytest.approx(1.0)


def test_burn_severity_pools_a_month_and_masks_empty_and_missing_histograms():
    edges = np.round(np.arange(-1.0, 1.3001, 0.1), 1)
    counts = np.zeros((2, 3, edges.size - 1))
    counts[0, 0, 10] = 90  # [0, 0.1): unburned
    counts[0, 1, 15] = 10  # [0.5, 0.6): moderate-high, same month
    counts[1, 2] = np.nan  # missing histogram
    ds = hist_cube(counts, edges, ["2026-09-03", "2026-09-20", "2026-10-05"])
    res = compute("burn_severity", ds)
    assert res.dims == ("site", "time") and list(res.time.dt.month.values) == [9, 10]
    assert one(res[0, 0]) == pytest.approx(0.1)
    assert np.isnan(res[0, 1]) and np.isnan(res[1, 0]) and np.isnan(res[1, 1])  # no valid pixel
    assert res.attrs["units"] == "1" and res.attrs["indicator_id"] == "burn_severity"
    assert [level_name(c) for c in classify("burn_severity_high_fraction", [0.005, 0.01, 0.2, 0.3])] == [
        "none",
        "low",
        "high",
        "severe",
    ]


def test_burn_severity_refuses_a_histogram_without_bin_edges():
    ds = hist_cube([[[1, 2]]], [0.0, 0.1, 0.2], ["2026-09-01"]).drop_vars("dnbr_bin_low")
    with pytest.raises(IndicatorInputError, match="dnbr_bin_low"):
        compute("burn_severity", ds)


# --- ground motion ------------------------------------------------------------------------------------


def egms_cube(velocity, differential, points, time, units="mm yr-1") -> xr.Dataset:
    return cube(
        time,
        ground_velocity_mean=(units, velocity),
        ground_velocity_differential=(units, differential),
        egms_points=("1", points),
    )


def test_ground_motion_is_the_absolute_velocity_of_releases_with_enough_points():
    time = ["2021-01-01", "2022-01-01", "2023-01-01", "2023-12-27"]
    ds = egms_cube(
        [[-3.2, -1.0, np.nan, -6.0], [4.0, 4.0, 4.0, 4.0]], [[8, 8, 8, 8]] * 2, [[30, 30, 30, 4]] * 2, time
    )
    res = compute("ground_motion_velocity", ds)
    assert list(res.time.dt.year.values) == [2021, 2022, 2023]
    assert (res.time.dt.month == 1).all() and (res.time.dt.day == 1).all()
    np.testing.assert_allclose(res.values, [[3.2, 1.0, np.nan], [4.0, 4.0, 4.0]])  # 2023: 4 points < 5
    assert [level_name(c) for c in classify("ground_motion_velocity", [1.99, 2.0, 5.0, 10.0, 25.0])] == [
        "none",
        "low",
        "moderate",
        "high",
        "severe",
    ]
    relaxed = compute("ground_motion_velocity", ds, min_points=3)
    assert one(relaxed[0, 2]) == pytest.approx(6.0)  # the last release of 2023 with data
    metres = compute("ground_motion_velocity", egms_cube([[-0.0032]], [[0.008]], [[30]], time[:1], "m/yr"))
    assert one(metres) == pytest.approx(3.2) and metres.attrs["units"] == "mm/yr"


def test_ground_motion_differential_and_missing_units():
    time = ["2024-01-01", "2025-01-01"]
    ds = egms_cube([[1.0, 1.0]], [[12.0, np.nan]], [[10, 10]], time)
    np.testing.assert_allclose(compute("ground_motion_differential", ds).values, [[12.0, np.nan]])
    assert level_name(int(classify("ground_motion_differential", [12.0])[0])) == "moderate"
    ds["ground_velocity_mean"].attrs.pop("units")
    with pytest.raises(IndicatorInputError, match="units"):
        compute("ground_motion_velocity", ds)


# --- imperviousness change ----------------------------------------------------------------------------


def test_imperviousness_change_since_the_previous_reference_year():
    time = ["2006-01-01", "2009-01-01", "2012-01-01", "2015-01-01", "2018-01-01"]
    ds = cube(
        time,
        imperviousness_mean_buffer=("%", [[10.0, 12.5, np.nan, 15.0, 21.0], [30, 30, 30, 30, 130]]),
    )
    res = compute("imperviousness_change", ds)
    assert list(res.time.dt.year.values) == [2006, 2009, 2012, 2015, 2018]
    np.testing.assert_allclose(res.values, [[np.nan, 2.5, np.nan, 2.5, 6.0], [np.nan, 0, 0, 0, np.nan]])
    assert res.previous_year.values[0].tolist() == [-1, 2006, -1, 2009, 2015]
    assert [level_name(c) for c in classify("imperviousness_change", res.values[0])] == [
        "no_data",
        "moderate",
        "no_data",
        "moderate",
        "high",
    ]
    fraction = cube(time, imperviousness_mean_buffer=("1", [[0.10, 0.125, np.nan, 0.15, 0.21]]))
    np.testing.assert_allclose(compute("imperviousness_change", fraction).values[0], res.values[0])


# --- vectorisation (hypothesis) -----------------------------------------------------------------------


def _random_inputs(rng: np.random.Generator, n: int, indicator_id: str) -> xr.Dataset:
    if indicator_id in ("ndvi_anomaly", "vegetation_encroachment"):
        time = pd.date_range("2018-01-01", "2023-12-31", freq="3D")
        ndvi = rng.uniform(0.1, 0.8, (n, time.size))
        ndvi[rng.random(ndvi.shape) < 0.5] = np.nan
        return cube(time, ndvi=("1", ndvi))
    if indicator_id.startswith("burn_severity"):
        time = pd.date_range("2025-01-01", periods=14, freq="15D")
        edges = np.round(np.arange(-1.0, 1.3001, 0.05), 2)
        counts = rng.poisson(rng.uniform(0, 20, (n, time.size, 1)), (n, time.size, edges.size - 1))
        counts = counts.astype(float)
        counts[rng.random((n, time.size)) < 0.2] = np.nan
        return hist_cube(counts, edges, time)
    if indicator_id.startswith("ground_motion"):
        time = pd.to_datetime(["2021-01-01", "2022-01-01", "2022-07-01", "2023-01-01", "2024-01-01"])
        return egms_cube(
            rng.normal(0, 4, (n, time.size)),
            rng.uniform(0, 20, (n, time.size)),
            rng.integers(0, 12, (n, time.size)),
            time,
        )
    time = pd.to_datetime(["2006-01-01", "2009-01-01", "2012-01-01", "2015-01-01", "2018-01-01"])
    imd = rng.uniform(0, 100, (n, time.size))
    imd[rng.random(imd.shape) < 0.3] = np.nan
    return cube(time, imperviousness_mean_buffer=("%", imd))


@pytest.mark.parametrize("indicator_id", IDS)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), position=st.integers(0, 999))
def test_one_site_alone_equals_the_same_site_in_a_batch_of_1000(indicator_id, seed, position):
    batch = _random_inputs(np.random.default_rng(seed), 1000, indicator_id)
    alone = compute(indicator_id, batch.isel(site=[position]))
    together = compute(indicator_id, batch).isel(site=[position])
    assert alone.dims == together.dims and (alone.time.values == together.time.values).all()
    np.testing.assert_allclose(alone.values, together.values, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_levels_of_every_land_indicator_are_thresholds_not_categories():
    assert not any(isinstance(get(i).levels, CategoryLevels) for i in IDS)
