"""Projected indicators: cftime safety of every projected indicator, annual and period reductions, the
synthetic projections source, and EQM bias adjustment."""

import warnings

import numpy as np
import pytest
import xarray as xr

import indicators
from monitor.projections import (
    Period,
    annual_values,
    bias_adjust,
    indicator_params,
    normalise_units,
    period_means,
    projected_indicators,
    to_calendar,
)
from monitor.sources.synthetic_projections import MODELS, SyntheticProjections, warming
from sites.io import load_demo_sites

warnings.filterwarnings("ignore", category=UserWarning)
SPECS = projected_indicators()


def cube(calendar: str, first: int = 1981, last: int = 1986, seed: int = 0) -> xr.Dataset:
    """Two sites of plausible weather on `calendar` (cftime), hot days planted on day 200 of each year."""
    time = xr.date_range(f"{first}-01-01", f"{last}-12-30", freq="D", calendar=calendar, use_cftime=True)
    if calendar != "360_day":
        time = xr.date_range(f"{first}-01-01", f"{last}-12-31", freq="D", calendar=calendar, use_cftime=True)
    n = time.size
    rng = np.random.default_rng(seed)
    doy = np.array([t.dayofyr for t in time])
    tas = 8.0 + 12.0 * np.sin((doy - 110) / 365 * 2 * np.pi) + rng.normal(0, 3, (2, n))
    return xr.Dataset(
        {
            "tas": (("site", "time"), tas, {"units": "degC"}),
            "tasmin": (("site", "time"), tas - 5, {"units": "degC"}),
            "tasmax": (("site", "time"), tas + 5, {"units": "degC"}),
            "pr": (("site", "time"), rng.gamma(0.6, 5.0, (2, n)), {"units": "mm d-1"}),
            "hurs": (("site", "time"), np.clip(rng.normal(75, 12, (2, n)), 5, 100), {"units": "%"}),
        },
        coords={"site": ["a", "b"], "time": time},
    )


def test_the_projected_indicators_are_the_climate_indicators():
    ids = {s.id for s in SPECS}
    assert {"freeze_thaw_cycles", "wet_frost_days", "salt_crystallisation_cycles", "hot_days"} <= ids
    assert {"max_1day_precipitation", "max_5day_precipitation", "drought_spi3", "very_wet_days"} <= ids
    assert all(set(s.inputs) <= {"tas", "tasmin", "tasmax", "pr", "hurs"} for s in SPECS)
    assert "pm10_exceedance_days" not in ids


@pytest.mark.parametrize("calendar", ["360_day", "noleap"])
def test_every_projected_indicator_runs_on_a_cftime_calendar(calendar):
    ds = cube(calendar)
    baseline = Period(1981, 1983)
    for spec in SPECS:
        values = indicators.compute(spec.id, ds, **indicator_params(spec, baseline))
        annual = annual_values(spec, values)
        assert list(annual["year"].values) == list(range(1981, 1987)), spec.id
        assert np.isfinite(annual.values).all(), spec.id
        if "baseline" in values.attrs:
            assert values.attrs["baseline"].startswith("1981-01-01/1983"), spec.id
        if "calibration" in values.attrs:
            assert values.attrs["calibration"] == "1981-01-01/1983-12-31", spec.id


@pytest.mark.parametrize("calendar", ["360_day", "noleap", "standard"])
def test_planted_hot_days_count_the_same_in_every_calendar(calendar):
    ds = cube(calendar)
    tasmax = ds["tasmax"].where(ds["tasmax"] < 29.0, 25.0)  # no natural hot day
    planted = {1981: 3, 1982: 0, 1983: 7, 1984: 1, 1985: 4, 1986: 2}
    years = ds["time"].dt.year.values
    months = ds["time"].dt.month.values
    days = ds["time"].dt.day.values
    values = tasmax.values.copy()
    for year, count in planted.items():
        hot = np.flatnonzero((years == year) & (months == 7) & (days <= count))
        values[0, hot] = 33.0
    ds["tasmax"] = tasmax.copy(data=values)
    spec = indicators.get("hot_days")
    annual = annual_values(spec, indicators.compute("hot_days", ds))  # the worst month of each year
    assert annual.sel(site="a").values.tolist() == [float(v) for v in planted.values()]
    assert annual.sel(site="b").values.tolist() == [0.0] * 6
    means = period_means(annual, [Period(1981, 1983), Period(1984, 1986), Period(1990, 1999)])
    assert means[0, :2].tolist() == pytest.approx([10 / 3, 7 / 3])
    assert np.isnan(means[0, 2])  # no year in the period: no value, not zero


def test_a_monthly_lower_is_worse_indicator_takes_the_driest_month():
    spec = indicators.get("drought_spi3")
    time = xr.date_range("2001-01-01", periods=24, freq="MS", calendar="360_day", use_cftime=True)
    spi = xr.DataArray(np.linspace(1, -1.3, 24)[None, :], dims=("site", "time"), coords={"time": time})
    annual = annual_values(spec, spi)
    assert annual.values[0].tolist() == pytest.approx([spi.values[0, 11], spi.values[0, 23]])


def test_units_of_a_cordex_cube_are_normalised_to_those_of_the_observed_cube():
    ds = cube("noleap")
    ds["tas"] = (ds["tas"] + 273.15).assign_attrs(units="K")
    ds["pr"] = (ds["pr"] / 86400.0).assign_attrs(units="kg m-2 s-1")
    out = normalise_units(ds)
    assert out["tas"].attrs["units"] == "degC" and out["pr"].attrs["units"] == "mm d-1"
    np.testing.assert_allclose(out["tas"].values, cube("noleap")["tas"].values, atol=1e-9)
    np.testing.assert_allclose(out["pr"].values, cube("noleap")["pr"].values, rtol=1e-9)


def test_synthetic_projections_are_deterministic_labelled_and_in_the_models_calendars():
    sites = load_demo_sites().subset(["stonehenge", "meteora"])
    source = SyntheticProjections()
    runs = source.runs()
    assert len(runs) == 6 and {r.scenario for r in runs} == {"rcp_4_5", "rcp_8_5"}
    assert {m.calendar for m in MODELS} >= {"360_day", "noleap"}
    run = next(r for r in runs if r.model == MODELS[0].name and r.scenario == "rcp_8_5")
    whole = source.fetch(sites, run, 2004, 2008)
    part = source.fetch(sites, run, 2006, 2006)
    np.testing.assert_array_equal(part["tas"].values, whole["tas"].sel(time=slice("2006", "2006")).values)
    assert whole["time"].dt.calendar == "360_day" and whole.sizes["time"] == 5 * 360
    assert list(whole["site"].values) == sites.ids
    assert whole.attrs["synthetic"] is True and "not Copernicus" in whole.attrs["attribution"]
    assert whole.attrs["splice"] == "historical 2004–2005 + rcp_8_5 2006–2008"
    assert all(whole[v].attrs["units"] for v in ("tas", "tasmin", "tasmax", "pr", "hurs"))
    # the scenarios share the historical years and part after them, by different warming paths
    other = source.fetch(
        sites, next(r for r in runs if r.model == run.model and r.scenario == "rcp_4_5"), 2004, 2005
    )
    np.testing.assert_array_equal(other["tas"].values, whole["tas"].sel(time=slice("2004", "2005")).values)
    assert warming(np.array([2090.0]), "rcp_8_5")[0] > warming(np.array([2090.0]), "rcp_4_5")[0] + 1.5


def test_to_calendar_keeps_whole_years_and_drops_days_evenly():
    time = xr.date_range("2000-01-01", "2001-12-31", freq="D")
    ds = xr.Dataset({"v": ("time", np.arange(time.size, dtype=float))}, coords={"time": time})
    d360 = to_calendar(ds, "360_day")
    assert d360.sizes["time"] == 720 and d360["time"].dt.calendar == "360_day"
    assert np.all(np.diff(d360["v"].values) >= 1)  # increasing: each model day takes a later real day
    noleap = to_calendar(ds, "noleap")
    assert noleap.sizes["time"] == 730 and 59.0 not in noleap["v"].values  # 29 Feb 2000 dropped


def test_eqm_adjusted_baseline_quantiles_match_the_reference():
    model = cube("360_day", 1981, 1990, seed=1)
    model["tas"], model["tasmax"] = model["tas"] + 3.0, model["tasmax"] + 2.0  # a warm bias
    model["pr"] = model["pr"] * 1.6  # a wet bias
    gregorian = xr.date_range("1981-01-01", "1990-12-31", freq="D")
    ref = cube("standard", 1981, 1990, seed=2).assign_coords(time=gregorian)
    adjusted, provenance = bias_adjust(model, ref, Period(1981, 1990), nquantiles=30)
    assert provenance["method"] == "eqm" and provenance["reference_period"] == "1981-1990"
    q = [0.1, 0.5, 0.9]
    for name, tol in (("tas", 0.35), ("tasmax", 0.35), ("pr", 0.35)):
        want = np.quantile(ref[name].values, q)
        got = np.quantile(adjusted[name].values, q)
        before = np.quantile(model[name].values, q)
        assert np.abs(got - want).max() < tol, name
        assert np.abs(before - want).max() > 3 * tol, name  # the bias was there to remove
    assert (adjusted["pr"].values >= 0).all()
    np.testing.assert_array_equal(adjusted["hurs"].values, model["hurs"].values)  # not adjusted
