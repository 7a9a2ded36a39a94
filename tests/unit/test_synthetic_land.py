"""The synthetic land and emergency generator: deterministic, independent of the period and of the site set,
with its events visible through the land and flood indicators."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

import indicators.flood as flood
import indicators.land  # noqa: F401  (registers the land indicators)
from indicators.core import classify, compute, level_name
from monitor.sources import synthetic
from monitor.sources.synthetic_land import (
    ACTIVATIONS,
    BURNS,
    DNBR_EDGES,
    EGMS,
    IMD_YEARS,
    VARIABLES,
    generate_land,
)
from sites.model import Site, SiteSet

PLACES = {
    "meteora": (21.6306, 39.7217),
    "pompeii": (14.4848, 40.7489),
    "venice": (12.3385, 45.4343),
    "acropolis": (23.7257, 37.9715),
    "stonehenge": (-1.8262, 51.1789),
    "bergen": (5.3242, 60.3975),
}


def make_site(site_id: str, lon: float, lat: float, buffer_m: float = 500.0) -> Site:
    d = 0.002
    return Site(id=site_id, name=site_id, geometry=box(lon - d, lat - d, lon + d, lat + d), buffer_m=buffer_m)


def make_sites(*ids: str) -> SiteSet:
    return SiteSet(make_site(i, *PLACES[i]) for i in (ids or PLACES))


def random_sites(n: int, seed: int) -> list[Site]:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-10, 30, n), rng.uniform(35, 62, n)
    return [make_site(f"r{seed}-{i}", a, b) for i, (a, b) in enumerate(zip(lon, lat, strict=True))]


@pytest.fixture(scope="module")
def demo() -> xr.Dataset:
    """The named sites over 2005–2027: every variable."""
    return generate_land(make_sites(), dt.date(2005, 1, 1), dt.date(2027, 12, 31))


def test_variables_units_dims_and_provenance(demo):
    assert set(demo.data_vars) == set(VARIABLES)
    for name, attrs in VARIABLES.items():
        assert demo[name].attrs["units"] == attrs["units"], name
        dims = ("site", "time", "dnbr_bin") if name == "dnbr_hist" else ("site", "time")
        assert demo[name].dims == dims, name
    assert demo.attrs["synthetic"] == "true" and "not Copernicus data" in demo.attrs["attribution"]
    assert "Meteora" in demo.attrs["injected_events"] and "Venice" in demo.attrs["injected_events"]
    np.testing.assert_array_equal(demo.dnbr_bin_low.values, DNBR_EDGES[:-1])
    np.testing.assert_array_equal(demo.dnbr_bin_high.values, DNBR_EDGES[1:])
    assert str(demo.time.dtype) == "datetime64[ns]"
    assert demo.sizes["time"] == (dt.date(2027, 12, 31) - dt.date(2005, 1, 1)).days + 1
    assert list(demo.site.values) == list(PLACES)


def test_the_time_axis_holds_the_days_of_the_requested_variables():
    sites = make_sites("venice")
    egms = generate_land(sites, dt.date(2019, 6, 1), dt.date(2026, 11, 15), list(EGMS))
    assert [str(t)[:10] for t in egms.time.values] == [f"{y}-01-01" for y in range(2021, 2027)]
    imd = generate_land(sites, dt.date(2000, 1, 1), dt.date(2026, 1, 1), ["imperviousness_mean_buffer"])
    assert [int(str(t)[:4]) for t in imd.time.values] == list(IMD_YEARS)
    hist = generate_land(sites, dt.date(2016, 5, 15), dt.date(2016, 9, 30), ["dnbr_hist"])
    assert [str(t)[:10] for t in hist.time.values] == ["2016-06-01", "2016-07-01", "2016-08-01", "2016-09-01"]
    assert np.isnan(hist.dnbr_hist.values[0, 0]).all() and np.isfinite(hist.dnbr_hist.values[0, 1:]).all()
    mixed = generate_land(sites, dt.date(2020, 12, 30), dt.date(2021, 1, 2), ["nbr", "egms_points"])
    assert mixed.sizes["time"] == 4
    assert np.isfinite(mixed.egms_points.values[0]).tolist() == [False, False, True, False]
    assert generate_land(sites, dt.date(2022, 2, 1), dt.date(2022, 3, 1), list(EGMS)).sizes["time"] == 0


def test_every_value_is_a_pure_function_of_site_and_date():
    sites = make_sites("meteora", "venice", "acropolis")
    whole = generate_land(sites, dt.date(2020, 1, 1), dt.date(2026, 12, 31))
    again = generate_land(sites, dt.date(2020, 1, 1), dt.date(2026, 12, 31))
    xr.testing.assert_identical(whole, again)
    part = generate_land(sites, dt.date(2026, 8, 10), dt.date(2026, 11, 3))
    xr.testing.assert_equal(part, whole.sel(time=part.time))


def test_a_site_gets_the_same_values_in_any_site_set():
    named = make_sites("pompeii", "venice")
    crowd = SiteSet([*random_sites(40, seed=1), *named, *random_sites(20, seed=2)])
    alone = generate_land(named, dt.date(2026, 1, 1), dt.date(2026, 11, 30))
    among = generate_land(crowd, dt.date(2026, 1, 1), dt.date(2026, 11, 30)).sel(site=list(named.ids))
    xr.testing.assert_equal(alone.drop_vars(["lat", "lon"]), among.drop_vars(["lat", "lon"]))


def test_nbr_and_ndmi_are_plausible_and_the_burn_lowers_nbr(demo):
    for name in ("nbr", "ndmi"):
        values = demo[name].values
        assert np.isfinite(values).all() and (values > -1).all() and (values < 1).all()
    nbr = demo.nbr.sel(site="meteora")
    before = float(nbr.sel(time=slice("2026-08-10", "2026-08-17")).mean())
    after = float(nbr.sel(time=slice("2026-08-19", "2026-08-26")).mean())
    assert before - after > 0.15  # a third of the area loses 0.55


def test_the_burns_show_in_the_dnbr_histograms_and_the_burn_indicators(demo):
    burnt = compute("burn_severity", demo)
    high = compute("burn_severity_high_fraction", demo)
    others = [s for s in PLACES if s not in ("meteora", "pompeii")]
    assert float(burnt.sel(site=others).max()) < 0.05  # unburnt noise stays below the 'low' level
    assert float(high.sel(site=others).max()) == 0.0
    assert float(burnt.sel(site=["meteora", "pompeii"], time=slice(None, "2026-08-01")).max()) < 0.05
    meteora = burnt.sel(site="meteora", time="2026-09-01")
    assert 0.3 <= float(meteora) <= 0.4 and float(high.sel(site="meteora", time="2026-09-01")) > 0.15
    assert level_name(int(classify("burn_severity", [float(meteora)])[0])) == "high"
    pompeii = float(burnt.sel(site="pompeii", time="2026-09-01"))
    assert level_name(int(classify("burn_severity", [pompeii])[0])) == "moderate"
    # a year on, the anniversary pair sees regrowth, not a burn
    later = compute("burn_severity", demo).sel(site="meteora", time="2027-10-01")
    assert float(later) < 0.05 and float(later.fraction_enhanced_regrowth_high) > 0.1
    counts = demo.dnbr_hist.sel(site="meteora").dropna("time", how="all")
    assert (counts.values >= 0).all() and (counts.values == np.round(counts.values)).all()
    assert {b.date.month for b in BURNS} == {8}


def test_egms_venice_subsides_and_the_acropolis_moves_differentially(demo):
    velocity = compute("ground_motion_velocity", demo).dropna("time", how="all")
    assert list(velocity.time.dt.year.values) == list(range(2021, 2028))
    venice = demo.ground_velocity_mean.sel(site="venice").dropna("time").values
    assert ((venice <= -2.0) & (venice >= -4.5)).all()
    assert (velocity.sel(site=["stonehenge", "bergen"]).values < 3.0).all()
    differential = compute("ground_motion_differential", demo).dropna("time", how="all")
    acropolis = differential.sel(site="acropolis").values
    assert (acropolis >= 10).all() and (np.diff(acropolis) > 0).all()
    assert (differential.drop_sel(site="acropolis").values < 5).all()
    egms = demo[list(EGMS)].dropna("time", how="all")
    assert (egms.ground_velocity_min <= egms.ground_velocity_mean).all()
    assert (egms.ground_velocity_max - egms.ground_velocity_min >= egms.ground_velocity_differential).all()
    assert (egms.egms_points >= 5).all()


def test_imperviousness_grows_slowly_between_reference_years(demo):
    imd = demo[["imperviousness_mean", "imperviousness_mean_buffer"]].dropna("time", how="all")
    assert [int(y) for y in imd.time.dt.year.values] == list(IMD_YEARS)
    assert ((imd.to_array() >= 0) & (imd.to_array() <= 100)).all()
    change = compute("imperviousness_change", imd)
    assert [int(y) for y in change.time.dt.year.values] == list(IMD_YEARS)
    assert np.isnan(change.values[:, 0]).all() and (change.values[:, 1:] > -1.5).all()
    assert (change.values[:, 1:] < 3.5).all()


def test_the_venice_activation_and_its_flood_delineations(demo):
    active = demo.ems_active.sel(time=slice("2026-10-01", "2026-12-31"))
    days = [str(t)[:10] for t in active.time.values[active.sel(site="venice").values > 0]]
    assert days[0] == "2026-10-30" and days[-1] == "2026-11-08" and len(days) == 10
    assert float(active.drop_sel(site="venice").max()) == 0
    flooded = demo.ems_flooded_fraction.sel(site="venice").dropna("time")
    assert [str(t)[:10] for t in flooded.time.values] == ["2026-10-31", "2026-11-03"]
    assert (flooded.values > 0).all()
    assert demo.ems_flooded_fraction.drop_sel(site="venice").isnull().all()
    res = compute("ems_activation", demo, **flood.optional_inputs("ems_activation", demo)).sel(site="venice")
    assert res.sel(time="2026-10-31").item() == 2 and res.sel(time="2026-11-01").item() == 1
    assert res.sel(time="2026-10-29").item() == 0
    assert {a.start.year for a in ACTIVATIONS} == {2018, 2026}


def test_return_periods_match_the_synthetic_discharge_and_flag_the_october_2026_flood():
    sites = make_sites("venice", "pompeii", "stonehenge", "bergen")
    rp = generate_land(
        sites, dt.date(1991, 1, 1), dt.date(2026, 11, 15), ["dis24_rp2", "dis24_rp5", "dis24_rp20"]
    )
    for name in ("dis24_rp2", "dis24_rp5", "dis24_rp20"):
        assert (rp[name] == rp[name].isel(time=0)).all()  # constant in time
    assert (rp.dis24_rp2 < rp.dis24_rp5).all() and (rp.dis24_rp5 < rp.dis24_rp20).all()
    q = synthetic.generate(sites, dt.date(1991, 1, 1), dt.date(2026, 11, 15), ["dis24"])
    annual_max = q.dis24.sel(time=slice("1991", "2020")).resample(time="YS").max()
    share = (annual_max >= rp.dis24_rp2.isel(time=0)).mean("time")
    assert ((share > 0.3) & (share < 0.7)).all()  # the 2-year flood: every other year
    assert ((annual_max >= rp.dis24_rp20.isel(time=0)).sum("time") <= 4).all()
    cube = xr.merge([q, rp], compat="override")
    category = compute("flood_return_period", cube, **flood.optional_inputs("flood_return_period", cube))
    assert (category.threshold_source == "glofas").all()
    peak = category.sel(time=slice("2026-10-29", "2026-11-05")).max("time")
    assert peak.sel(site="venice").item() == 3 and peak.sel(site="pompeii").item() == 3
    assert peak.sel(site=["stonehenge", "bergen"]).max().item() < 3


def test_requests_are_checked():
    with pytest.raises(ValueError, match="unknown synthetic land variables"):
        generate_land(make_sites("venice"), dt.date(2020, 1, 1), dt.date(2020, 1, 2), ["ndvi"])
    with pytest.raises(ValueError, match="before"):
        generate_land(make_sites("venice"), dt.date(2020, 1, 2), dt.date(2020, 1, 1))
    empty = generate_land(SiteSet([]), dt.date(2020, 1, 1), dt.date(2020, 1, 3), ["nbr", "dnbr_hist"])
    assert empty.sizes["site"] == 0 and empty.nbr.shape == (0, 3)
