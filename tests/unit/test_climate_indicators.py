"""Climate indicators: independent xclim calls on real ERA5 data, xclim's own test values, hand
calculations, and properties (units, missing data, batch size) checked with hypothesis."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import xclim
import xclim.indices as xci
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xclim.core.units import convert_units_to

import indicators
from indicators import LEVEL_CODES, climate

NEW_IDS = (
    "wet_frost_days",
    "salt_crystallisation_cycles",
    "time_of_wetness",
    "max_5day_precipitation",
    "very_wet_days",
    "very_wet_days_total",
    "heat_wave_days",
    "thermal_stress_days",
    "drought_spi3",
    "scheffer_decay_index",
)
CLIMATE_IDS = tuple(s.id for s in indicators.catalog() if s.family == "climate")
#: Every climate indicator but the SPI, whose gamma fit needs years of data (tested on its own).
DAILY_IDS = tuple(i for i in CLIMATE_IDS if i != "drought_spi3")


def cube(start: str = "2001-01-01", step: str = "D", **variables: tuple[str, object]) -> xr.Dataset:
    """A site cube from name=(units, values over (site, time)); one row of values is one site."""
    arrays = {name: np.atleast_2d(np.asarray(v, dtype=float)) for name, (_, v) in variables.items()}
    n_site, n_time = next(iter(arrays.values())).shape
    ds = xr.Dataset(
        coords={
            "site": [f"s{i}" for i in range(n_site)],
            "time": pd.date_range(start, periods=n_time, freq=step),
        }
    )
    for name, (units, _) in variables.items():
        ds[name] = (("site", "time"), arrays[name], {"units": units})
    return ds


def weather_cube(w: dict[str, np.ndarray], start: str, si: bool = True) -> xr.Dataset:
    """The five daily variables in SI-like units (K, kg m-2 s-1, RH fraction) or in °C, mm/d and %."""
    if si:
        return cube(
            start,
            tas=("K", w["tas"] + 273.15),
            tasmin=("K", w["tasmin"] + 273.15),
            tasmax=("K", w["tasmax"] + 273.15),
            pr=("kg m-2 s-1", w["pr"] / 86400.0),
            hurs=("1", w["hurs"] / 100.0),
        )
    return cube(
        start,
        tas=("degC", w["tas"]),
        tasmin=("degC", w["tasmin"]),
        tasmax=("degC", w["tasmax"]),
        pr=("mm/d", w["pr"]),
        hurs=("%", w["hurs"]),
    )


# Values lie off every threshold of the indicators (0, 20, 30 °C, DTR 15 K, 0.25 and 1 mm/d, 75.3 and 80 %),
# so that unit round-off (1e-13) cannot move a value across one: that is float arithmetic, not science.
PR_VALUES = (0.0, 0.1, 0.4, 0.9, 1.3, 2.7, 6.1, 14.2, 33.3, 71.9)


@st.composite
def daily_weather(draw, min_days: int = 20, max_days: int = 90, sites: int = 1) -> dict[str, np.ndarray]:
    n = draw(st.integers(min_days, max_days))

    def ints(lo: int, hi: int) -> np.ndarray:
        values = draw(st.lists(st.integers(lo, hi), min_size=n * sites, max_size=n * sites))
        return np.array(values, dtype=float).reshape(sites, n)

    tasmin = ints(-8, 24) + 0.37
    tasmax = tasmin + ints(0, 22) + 0.5
    pr = np.array(draw(st.lists(st.sampled_from(PR_VALUES), min_size=n * sites, max_size=n * sites)))
    return {
        "tasmin": tasmin,
        "tasmax": tasmax,
        "tas": (tasmin + tasmax) / 2.0,
        "pr": pr.reshape(sites, n),
        "hurs": ints(40, 99) + 0.21,
    }


START_DATES = st.dates(
    min_value=pd.Timestamp("2001-01-01").date(), max_value=pd.Timestamp("2002-12-01").date()
)


# --- declarations ---------------------------------------------------------------------------------


def test_every_climate_indicator_is_declared_completely():
    assert set(NEW_IDS) <= set(CLIMATE_IDS)
    for indicator_id in NEW_IDS:
        spec = indicators.get(indicator_id)
        assert spec.version == "1" and spec.family == "climate"
        assert spec.title and spec.description and spec.units and spec.inputs and spec.references
        assert spec.freq in ("MS", "YS")
        assert isinstance(spec.levels, indicators.Thresholds)
        assert not spec.provisional or spec.provisional_note
        for name, parameter in spec.parameters.items():
            assert parameter.description, (indicator_id, name)
    assert indicators.get("scheffer_decay_index").materials == ("timber",)
    assert indicators.get("drought_spi3").levels.direction == "lower_is_worse"
    # baselines and fitted distributions need the whole stored record, not only the periods recomputed
    assert all(indicators.get(i).history for i in ("very_wet_days", "very_wet_days_total", "drought_spi3"))


def test_existing_indicators_keep_their_ids_units_and_frequency():
    declared = {i: (indicators.get(i).units, indicators.get(i).freq) for i in CLIMATE_IDS}
    assert declared["freeze_thaw_cycles"] == ("days", "YS")
    assert declared["max_1day_precipitation"] == ("mm", "MS")
    assert declared["hot_days"] == ("days", "MS")


# --- real ERA5 data against independent xclim calls ------------------------------------------------


@pytest.fixture(scope="module")
def era5(shared_data) -> xr.Dataset:
    """ERA5 daily 1990–1993 at 5 Canadian cities, `location` renamed to our `site`."""
    path = shared_data / "era5" / "daily_surface_cancities_1990-1993.nc"
    with xr.open_dataset(path) as ds:
        return ds.rename(location="site").load()


def _same(ours: xr.DataArray, theirs: xr.DataArray, rtol: float = 1e-6) -> None:
    theirs = theirs.transpose(*ours.dims)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.time.values, theirs.time.values)
    np.testing.assert_allclose(ours.values.astype(float), theirs.values.astype(float), rtol=rtol, atol=1e-9)


@pytest.mark.realdata
def test_era5_counts_and_maxima_agree_with_direct_xclim_indicator_calls(era5):
    atmos = xclim.atmos
    pr_mm = convert_units_to(era5.pr, "mm/d", context="hydro")
    checks = {
        "freeze_thaw_cycles": atmos.daily_freezethaw_cycles(
            tasmin=era5.tasmin, tasmax=era5.tasmax, freq="YS"
        ),
        "max_1day_precipitation": atmos.max_1day_precipitation_amount(pr=pr_mm, freq="MS"),
        "max_5day_precipitation": atmos.max_n_day_precipitation_amount(pr=era5.pr, window=5, freq="MS"),
        "hot_days": atmos.tx_days_above(tasmax=era5.tasmax, thresh="30 degC", freq="MS"),
        "heat_wave_days": atmos.heat_wave_total_length(
            tasmin=era5.tasmin,
            tasmax=era5.tasmax,
            thresh_tasmin="20 degC",
            thresh_tasmax="30 degC",
            window=3,
            freq="YS",
        ),
    }
    for indicator_id, theirs in checks.items():
        ours = indicators.compute(indicator_id, era5)
        if indicator_id == "max_5day_precipitation":
            theirs = convert_units_to(theirs, "mm", context="hydro")
        _same(ours, theirs)
    assert indicators.compute("freeze_thaw_cycles", era5).sum() > 0  # the comparison is not vacuous
    assert indicators.compute("heat_wave_days", era5).sum() > 0


@pytest.mark.realdata
def test_era5_very_wet_days_agree_with_xclim_on_a_percentile_computed_independently(era5):
    pr_mm = convert_units_to(era5.pr, "mm/d", context="hydro")
    wet = np.where(pr_mm.values >= 1.0, pr_mm.values, np.nan)  # 1990–1993 cannot cover 1991–2020
    p95 = np.nanpercentile(wet, 95, axis=1, method="median_unbiased")
    pr_per = xr.DataArray(p95, dims="site", coords={"site": era5.site}, attrs={"units": "mm/d"})
    days = xclim.atmos.days_over_precip_thresh(pr=era5.pr, pr_per=pr_per, thresh="1 mm/d", freq="YS")
    ours = indicators.compute("very_wet_days", era5)
    _same(ours, days)
    assert "whole record" in ours.attrs["baseline"]
    fraction = xci.fraction_over_precip_thresh(pr_mm, pr_per, thresh="1 mm/d", freq="YS")
    wet_total = pr_mm.where(pr_mm >= 1.0, 0.0).resample(time="YS").sum()
    _same(indicators.compute("very_wet_days_total", era5), fraction * wet_total)


@pytest.mark.realdata
def test_era5_spi3_agrees_with_the_xclim_indicator(era5):
    """Same fit as xclim (gamma, Thom's approximation): equal in float64; on the file's float32, xclim fits
    in float32 and we in float64, so they differ only by float32 rounding."""
    for data, rtol, atol in ((era5.astype("float64"), 1e-9, 0.0), (era5, 0.0, 1e-3)):
        theirs = xclim.atmos.standardized_precipitation_index(
            pr=data.pr, freq="MS", window=3, dist="gamma", method="APP", fitkwargs={"floc": 0}
        )
        ours = indicators.compute("drought_spi3", data)
        assert "not covered" in ours.attrs["calibration"]  # 1990–1993: the whole record calibrates
        np.testing.assert_allclose(ours.values, theirs.transpose(*ours.dims).values, rtol=rtol, atol=atol)
        assert np.isfinite(ours.values[:, 2:]).all()


@pytest.mark.realdata
def test_era5_hand_written_indices_agree_with_plain_numpy(era5):
    """Indices xclim lacks, recomputed here with numpy loops written independently of the module."""
    tmax = era5.tasmax.values - 273.15
    tmin = era5.tasmin.values - 273.15
    pr = era5.pr.values * 86400.0
    rh = era5.hurs.values * 100.0
    tas = era5.tas.values - 273.15
    years = era5.time.dt.year.values
    expected = {k: np.zeros((era5.site.size, 4)) for k in ("thermal", "wet_frost", "salt", "tow")}
    for s in range(era5.site.size):
        above = rh[s] >= 75.3
        for y, year in enumerate(range(1990, 1994)):
            sel = np.nonzero(years == year)[0]
            expected["thermal"][s, y] = np.sum(tmax[s, sel] - tmin[s, sel] >= 15.0)
            rain = pr[s] >= 1.0
            rain_or_before = rain | np.concatenate([[False], rain[:-1]])
            expected["wet_frost"][s, y] = np.sum((tmin[s] <= 0.0)[sel] & rain_or_before[sel])
            changes = above[1:] != above[:-1]
            expected["salt"][s, y] = changes[sel[sel > 0] - 1].sum() / 2.0
            expected["tow"][s, y] = 24.0 * np.sum((rh[s, sel] > 80.0) & (tas[s, sel] > 0.0))
    for key, indicator_id in [
        ("thermal", "thermal_stress_days"),
        ("wet_frost", "wet_frost_days"),
        ("salt", "salt_crystallisation_cycles"),
        ("tow", "time_of_wetness"),
    ]:
        np.testing.assert_array_equal(indicators.compute(indicator_id, era5).values, expected[key])
        assert expected[key].sum() > 0


# --- xclim's own test values (shared/reference/cases.json) through our path -------------------------


def test_rx1day_xclim_cases():
    # xclim tests/test_indices.py L66-103: [3, 4, 20, 0, 0] → 20 and the tie [20, 4, 20, 20, 0] → 20
    res = indicators.compute(
        "max_1day_precipitation", cube(pr=("mm/d", [[3, 4, 20, 0, 0], [20, 4, 20, 20, 0]]))
    )
    assert res.values[:, 0].tolist() == [20.0, 20.0]


def test_freeze_thaw_xclim_cases():
    # L2752-2767: Tmax 5, Tmin −5 every day for a year → 365
    uniform = cube(tasmax=("degC", np.full(365, 5.0)), tasmin=("degC", np.full(365, -5.0)))
    assert indicators.compute("freeze_thaw_cycles", uniform).item() == 365
    # L2681-2686 + L2770-2783: the static series → 4
    static = cube(
        tasmax=("degC", [22, 10, 35.2, 25.1, 18.9, 12, 16]), tasmin=("degC", [2, -11.5, 7.7, 1, -2.6, -8, -3])
    )
    assert indicators.compute("freeze_thaw_cycles", static).item() == 4
    # L1415-1440 (test_simple): from 2000-07-01, monthly counts 5, 1, then 0
    tmin, tmax = np.zeros(365), np.zeros(365)
    tmin[10:20], tmax[10:15] = -1, 1
    tmin[40:44], tmax[40:44] = [1, 1, -1, -1], [1, -1, 1, -1]
    simple = cube("2000-07-01", tasmax=("degC", tmax), tasmin=("degC", tmin))
    monthly = indicators.compute("freeze_thaw_cycles", simple, freq="MS").values[0]
    assert monthly[:2].tolist() == [5, 1] and (monthly[2:] == 0).all()


@pytest.mark.parametrize(
    ("thresh_tasmin", "thresh_tasmax", "window", "waves", "days"),
    [
        ("22 degC", "30 degC", 3, 2, 7),
        ("22 degC", "30 degC", 4, 1, 4),
        ("10 degC", "10 degC", 3, 1, 10),
        ("40 degC", "40 degC", 3, 0, 0),
    ],
)
def test_heat_wave_xclim_cases(thresh_tasmin, thresh_tasmax, window, waves, days):
    # L1859-1888 give the number of waves; heat_wave_days counts their days (3 + 4 in the first case)
    ds = cube(
        tasmin=("degC", [20, 23, 23, 23, 23, 22, 23, 23, 23, 23]),
        tasmax=("degC", [29, 31, 31, 31, 29, 31, 31, 31, 31, 31]),
    )
    params = {"thresh_tasmin": thresh_tasmin, "thresh_tasmax": thresh_tasmax, "window": window}
    assert xci.heat_wave_frequency(ds.tasmin, ds.tasmax, thresh_tasmin, thresh_tasmax, window).item() == waves
    assert indicators.compute("heat_wave_days", ds, **params).item() == days


# --- hand calculations ----------------------------------------------------------------------------


def test_scheffer_index_hand_calculation():
    """Hand calculation: one year with a constant temperature in each month and D rainy days at its start.

    (T − 2)+ · (D − 3)+ per month, Jan…Dec: 0·7, 1·5, 4·9, 7·6, 11·0, 14·4, 16·2, 16·3, 13·0, 9·8, 4·11,
    0·12 = 0 + 5 + 36 + 42 + 0 + 56 + 32 + 48 + 0 + 72 + 44 + 0 = 335; CI = 335 / 16.7 = 20.0599 (low).
    Rainy days alternate 2 mm and exactly 0.25 mm (counted, ≥); other days have 0.2 mm (not counted).
    """
    temps = [1, 3, 6, 9, 13, 16, 18, 18, 15, 11, 6, 2]
    rainy = [10, 8, 12, 9, 2, 7, 5, 6, 3, 11, 14, 15]
    time = pd.date_range("2001-01-01", "2001-12-31", freq="D")
    tas, pr = np.zeros(time.size), np.full(time.size, 0.2)
    for month in range(12):
        days = np.nonzero(time.month == month + 1)[0]
        tas[days] = temps[month]
        pr[days[: rainy[month]]] = np.where(np.arange(rainy[month]) % 2 == 0, 2.0, 0.25)
    ds = cube(tas=("degC", tas), pr=("mm/d", pr))
    ci = indicators.compute("scheffer_decay_index", ds)
    assert ci.item() == pytest.approx(335 / 16.7, rel=1e-12)
    assert indicators.classify("scheffer_decay_index", [ci.item(), 35.0, 50.0, 66.0]).tolist() == [
        LEVEL_CODES[n] for n in ("low", "moderate", "moderate", "high")
    ]


def test_wet_frost_hand_calculation():
    # frost (Tmin ≤ 0) on days 0, 1, 3, 4, 5, 7; rain ≥ 1 mm on days 1 and 5 (0.5 mm on day 7 is too little)
    ds = cube(tasmin=("degC", [-2, -1, 3, -4, -5, 0, 1, -3]), pr=("mm/d", [0, 2, 0, 0, 0, 1, 0, 0.5]))
    assert indicators.compute("wet_frost_days", ds).item() == 2  # days 1 and 5: rain the same day
    assert (
        indicators.compute("wet_frost_days", ds, window=3).item() == 4
    )  # + day 3 (rain day 1), day 7 (day 5)
    assert indicators.compute("wet_frost_days", ds, window=1, thresh="-1.5 degC").item() == 0


def test_salt_cycles_hand_calculation_and_methods():
    rh = [70, 80, 76, 74, 75.3, 75.2, 90]  # states below, above, above, below, above (≥), below, above
    daily = cube(hurs=("%", rh))
    res = indicators.compute("salt_crystallisation_cycles", daily)
    assert res.item() == 2.5 and res.attrs["method"].startswith("daily proxy")  # 5 crossings
    assert indicators.compute("salt_crystallisation_cycles", daily, hysteresis="2 %").item() == 0.5
    hourly = np.r_[
        np.full(6, 60.0), np.full(12, 90.0), np.full(12, 60.0), np.full(12, 90.0), np.full(6, 60.0)
    ]
    res = indicators.compute("salt_crystallisation_cycles", cube(step="h", hurs=("%", hourly)))
    assert res.item() == 2.0 and res.attrs["method"] == "hourly"  # crossings at hours 6, 18, 30, 42
    # min/max proxy: days 0 (60 < 75.3 ≤ 80) and 3 (50 < 75.3 ≤ 75.3) straddle the threshold
    mm = cube(
        hurs=("%", [70, 72, 83, 60]), hurs_min=("%", [60, 70, 76, 50]), hurs_max=("%", [80, 75, 90, 75.3])
    )
    res = climate.salt_crystallisation_cycles(mm.hurs, hurs_min=mm.hurs_min, hurs_max=mm.hurs_max)
    assert res.item() == 2.0 and "min/max" in res.attrs["method"]


def test_time_of_wetness_hourly_daily_and_iso_classes():
    # hourly: 30 h with RH > 80 %, of which 6 at T ≤ 0 °C → 24 h
    rh = np.r_[np.full(30, 85.0), np.full(18, 60.0)]
    t = np.r_[np.full(6, -1.0), np.full(42, 5.0)]
    res = indicators.compute("time_of_wetness", cube(step="h", tas=("degC", t), hurs=("%", rh)))
    assert res.item() == 24.0 and res.attrs["method"] == "hourly"
    daily = cube(tas=("degC", [5, 5, -2, 5]), hurs=("%", [85, 79, 90, 80.5]))
    res = indicators.compute("time_of_wetness", daily)
    assert res.item() == 48.0 and res.attrs["method"].startswith("daily estimate")
    # ISO 9223:1992 τ1 … τ5 → none … severe
    assert indicators.classify("time_of_wetness", [5, 100, 1000, 3000, 6000]).tolist() == [0, 1, 2, 3, 4]


def test_rx5day_hand_calculation_and_missing_day():
    pr = [3, 4, 20, 20, 0, 6, 9, 25, 0, 0]  # 5-day sums 47, 50, 55, 60, 40, 40 → 60
    assert indicators.compute("max_5day_precipitation", cube(pr=("mm/d", pr))).item() == 60.0
    gap = [3, 4, 20, 20, 0, 6, np.nan, 25, 0, 0]  # only the windows 0–4 (47) and 1–5 (50) are complete
    assert indicators.compute("max_5day_precipitation", cube(pr=("mm/d", gap))).item() == 50.0


def test_thermal_stress_threshold_is_a_temperature_difference():
    ds = cube(tasmax=("degC", [25, 24.9, 30, 10]), tasmin=("degC", [10, 10, 10, 9]))  # DTR 15, 14.9, 20, 1
    for thresh in ("15 K", "15 delta_degC", "15 degC", "27 degF"):
        assert indicators.compute("thermal_stress_days", ds, thresh=thresh).item() == 2


def test_spi_levels_follow_the_mckee_wmo_classes():
    # cases.json spi_spei_category: −1.2 moderately dry, −1.7 severely dry, −2.0 extremely dry
    codes = indicators.classify("drought_spi3", [0.0, -0.99, -1.0, -1.2, -1.5, -1.7, -2.0, -3.1, np.nan])
    names = ["none", "none", "moderate", "moderate", "high", "high", "severe", "severe"]
    assert codes.tolist() == [LEVEL_CODES[n] for n in names] + [-1]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.one_of(st.none(), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=30),
        min_size=1,
        max_size=5,
    ),
    q=st.floats(0, 1),
)
def test_vectorised_wet_day_percentile_is_numpys_median_unbiased_quantile(rows, q):
    width = max(len(r) for r in rows)
    a = np.array([[np.nan if v is None else v for v in r] + [np.nan] * (width - len(r)) for r in rows])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        expected = np.nanquantile(a, q, axis=-1, method="median_unbiased")
    np.testing.assert_allclose(climate._nanquantile_type8(a, q), expected, rtol=1e-12, atol=1e-12)


def test_baseline_and_calibration_periods_are_used_when_covered():
    rng = np.random.default_rng(1)
    time = pd.date_range("1991-01-01", "2021-12-31", freq="D")
    pr = rng.gamma(0.6, 5.0, time.size) * (rng.random(time.size) < 0.5)
    pr[time.year == 2021] *= 3.0  # a very wet year after the baseline
    ds = cube("1991-01-01", pr=("mm/d", pr))
    days = indicators.compute("very_wet_days", ds)
    assert days.attrs["baseline"] == "1991-01-01/2020-12-31"
    assert days.values[0, -1] > 3 * days.values[0, :-1].mean()
    assert days.values[0, :-1].mean() == pytest.approx(0.05 * (pr[time.year < 2021] >= 1).sum() / 30, rel=0.1)
    spi = indicators.compute("drought_spi3", ds)
    assert spi.attrs["calibration"] == "1991-01-01/2020-12-31"
    assert spi.sel(time="2021").mean() > 1.5
    short = indicators.compute("very_wet_days", ds.sel(time=slice("2015", "2021")))
    assert short.attrs["baseline"].startswith("whole record 2015-01-01/2021-12-31")


# --- properties -----------------------------------------------------------------------------------

#: Each hypothesis example is a cube of several sites, so one vectorised call checks several series.
FAST = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(w=daily_weather(sites=6), start=START_DATES)
def test_units_do_not_change_any_result(w, start):
    """°C vs K, mm/d vs kg m-2 s-1, % vs RH fraction give the same values."""
    si, customary = weather_cube(w, str(start), si=True), weather_cube(w, str(start), si=False)
    for indicator_id in DAILY_IDS:
        a, b = indicators.compute(indicator_id, customary), indicators.compute(indicator_id, si)
        np.testing.assert_allclose(b.values, a.values, rtol=1e-9, atol=1e-9, err_msg=indicator_id)


def _previous_valid(values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last valid value before it (the first valid value at the start)."""
    return pd.DataFrame(values.T).ffill().bfill().to_numpy().T


#: What a missing day must be equivalent to: (indicator, variable blanked, replacement that is no event).
NEUTRAL = [
    ("freeze_thaw_cycles", "tasmin", lambda w, v: np.full_like(v, 5.37)),
    ("wet_frost_days", "tasmin", lambda w, v: np.full_like(v, 5.37)),
    ("wet_frost_days", "pr", lambda w, v: np.zeros_like(v)),
    ("hot_days", "tasmax", lambda w, v: np.full_like(v, 10.0)),
    ("heat_wave_days", "tasmax", lambda w, v: np.full_like(v, 10.0)),
    ("heat_wave_days", "tasmin", lambda w, v: np.full_like(v, 10.0)),
    ("thermal_stress_days", "tasmax", lambda w, v: w["tasmin"]),
    ("very_wet_days", "pr", lambda w, v: np.zeros_like(v)),
    ("very_wet_days_total", "pr", lambda w, v: np.zeros_like(v)),
    ("max_1day_precipitation", "pr", lambda w, v: np.zeros_like(v)),
    ("time_of_wetness", "hurs", lambda w, v: np.full_like(v, 50.0)),
    ("salt_crystallisation_cycles", "hurs", lambda w, v: _previous_valid(v)),
]


@FAST
@given(
    w=daily_weather(sites=6),
    start=START_DATES,
    shares=st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), min_size=6, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_missing_day_never_counts(w, start, shares, seed):
    """A NaN day gives the value of the same day made a non-event; a period with no valid day is NaN."""
    blank = np.random.default_rng(seed).random(w["pr"].shape) < np.array(shares)[:, None]
    days = pd.date_range(str(start), periods=blank.shape[1], freq="D")
    n_sites = blank.shape[0]
    valid = xr.DataArray(~blank, coords={"time": days}, dims=("site", "time"))
    for indicator_id, variable, neutral in NEUTRAL:
        # sites 0–5 with NaN days, sites 6–11 the same series with those days made non-events
        gappy = np.where(blank, np.nan, w[variable])
        both = {k: np.concatenate([v, v]) for k, v in w.items()}
        both[variable] = np.concatenate([gappy, np.where(blank, neutral(w, gappy), w[variable])])
        res = indicators.compute(indicator_id, weather_cube(both, str(start), si=False)).values
        got, expected = res[:n_sites], res[n_sites:]
        has_data = (valid.resample(time=indicators.get(indicator_id).freq).sum() > 0).values
        assert np.isnan(got[~has_data]).all(), indicator_id
        np.testing.assert_array_equal(got[has_data], expected[has_data], err_msg=indicator_id)


@pytest.mark.parametrize("indicator_id", CLIMATE_IDS)
def test_a_period_without_data_is_nan_not_zero(indicator_id):
    rng = np.random.default_rng(7)
    years = 4 if indicator_id == "drought_spi3" else 2
    time = pd.date_range("2001-01-01", periods=365 * years, freq="D")
    tasmin = rng.normal(2, 8, time.size)
    w = {
        "tasmin": tasmin,
        "tasmax": tasmin + rng.uniform(0, 20, time.size),
        "pr": rng.gamma(0.5, 6, time.size),
        "hurs": rng.uniform(50, 100, time.size),
    }
    w["tas"] = (w["tasmin"] + w["tasmax"]) / 2
    empty = (time.year == 2001) & (time.month == 3 if indicators.get(indicator_id).freq == "MS" else True)
    for values in w.values():
        values[empty] = np.nan
    res = indicators.compute(
        indicator_id, weather_cube({k: v[None] for k, v in w.items()}, "2001-01-01", si=False)
    )
    period = res.time.to_index()
    hole = (period.year == 2001) & (
        (period.month == 3) if indicators.get(indicator_id).freq == "MS" else True
    )
    assert np.isnan(res.values[0, hole]).all()
    later = period.year >= (2003 if indicator_id == "drought_spi3" else 2002)
    assert np.isfinite(res.values[0, later]).all()


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    w=daily_weather(min_days=40, max_days=70),
    start=START_DATES,
    position=st.integers(0, 999),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_site_alone_equals_that_site_in_a_batch_of_1000(w, start, position, seed):
    rng = np.random.default_rng(seed)
    n = w["pr"].shape[1]
    tasmin = rng.normal(5, 9, (1000, n))
    batch = {
        "tasmin": tasmin,
        "tasmax": tasmin + rng.uniform(0, 22, (1000, n)),
        "pr": rng.gamma(0.5, 6, (1000, n)),
        "hurs": rng.uniform(40, 100, (1000, n)),
    }
    batch["tas"] = (batch["tasmin"] + batch["tasmax"]) / 2
    for name, values in batch.items():
        values[position] = w[name][0]
    alone, together = weather_cube(w, str(start), si=False), weather_cube(batch, str(start), si=False)
    for indicator_id in DAILY_IDS:
        one = indicators.compute(indicator_id, alone).values[0]
        many = indicators.compute(indicator_id, together).values[position]
        np.testing.assert_array_equal(many, one, err_msg=indicator_id)


def test_spi_of_one_site_equals_its_row_in_a_batch_of_1000_and_ignores_units():
    rng = np.random.default_rng(3)
    pr = rng.gamma(0.5, 6.0, (1000, 365 * 3)) * (rng.random((1000, 365 * 3)) < 0.6)
    batch = cube("2001-01-01", pr=("mm/d", pr))
    together = indicators.compute("drought_spi3", batch)
    alone = indicators.compute("drought_spi3", batch.isel(site=[517]))
    np.testing.assert_array_equal(together.values[517], alone.values[0])
    flux = indicators.compute("drought_spi3", cube("2001-01-01", pr=("kg m-2 s-1", pr[[517]] / 86400.0)))
    np.testing.assert_allclose(flux.values, alone.values, rtol=1e-9, atol=1e-9)
