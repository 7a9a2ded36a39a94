"""The fast paths of the daily refresh and of the API give what the plain paths gave.

- the demo GloFAS return levels: computed by blocks of sites, kept on disk for the next process;
- the synthetic generator's site parameters: computed once per site set;
- forecast values: written in bulk (executemany of tuples, COPY on PostgreSQL), read back unchanged;
- the API's time-series reader: the same frame as `Store.series` (the JSON points and the provenance
  summary: tests/api/test_timeseries_readers.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import indicators
from api.routes.timeseries import read_series
from monitor.sources import synthetic, synthetic_land
from monitor.store.forecasts import ForecastIssue, forecast_values, replace_forecast
from monitor.store.repository import driver_values
from sites.model import SiteParams, SiteSet
from tests.conftest import make_site


def _sites(n: int = 5) -> SiteSet:
    return SiteSet(make_site(f"s{i}", 2.0 + 3.1 * i, 41.0 + 1.7 * i) for i in range(n))


@pytest.fixture
def fresh_rp_cache(monkeypatch):
    monkeypatch.setattr(synthetic_land, "_RP_CACHE", type(synthetic_land._RP_CACHE)())
    monkeypatch.setattr(synthetic_land, "_RP_LOADED", set())
    monkeypatch.setattr(synthetic_land, "_RP_CACHE_DIR", None)


def test_return_levels_by_blocks_equal_one_block_and_come_back_from_disk(
    fresh_rp_cache, monkeypatch, tmp_path
):
    sites = _sites(5)
    whole = synthetic_land._return_levels(sites)
    assert whole.shape == (5, 3) and np.isfinite(whole).all()
    assert (np.diff(whole, axis=1) > 0).all()  # rp2 < rp5 < rp20

    synthetic_land._RP_CACHE.clear()
    monkeypatch.setattr(synthetic_land, "_RP_BLOCK", 2)
    synthetic_land.use_cache_dir(tmp_path / "cache")
    np.testing.assert_array_equal(synthetic_land._return_levels(sites), whole)
    assert list((tmp_path / "cache").glob("return-levels-*.npz"))

    # another process: empty memory, the file is there, nothing is generated again
    synthetic_land._RP_CACHE.clear()
    synthetic_land._RP_LOADED.clear()

    def no_generation(*args, **kwargs):
        raise AssertionError("return levels recomputed although cached on disk")

    monkeypatch.setattr(synthetic, "generate", no_generation)
    np.testing.assert_array_equal(synthetic_land._return_levels(SiteSet(reversed(list(sites)))), whole[::-1])


def test_return_levels_follow_what_they_depend_on(fresh_rp_cache, tmp_path):
    synthetic_land.use_cache_dir(tmp_path)
    site = make_site("river", 10.0, 47.0)
    near_sea = make_site("river", 10.0, 47.0, params=SiteParams(distance_to_sea_km=1.0))
    moved = make_site("river", 10.3, 47.2)
    levels = [synthetic_land._return_levels(SiteSet([s]))[0] for s in (site, near_sea, moved)]
    assert not np.array_equal(levels[0], levels[2])
    assert len(synthetic_land._RP_CACHE) == 3


def test_site_parameters_are_computed_once_per_site_set_and_not_shared_for_changes():
    sites = _sites(4)
    first = synthetic._Geo.from_sites(sites)
    assert synthetic._Geo.from_sites(SiteSet(list(sites))) is first
    with pytest.raises(ValueError):
        first.lat[0] = 0.0  # shared between callers: read-only
    other = synthetic._Geo.from_sites(SiteSet([*list(sites)[:3], make_site("s3", 9.0, 50.0)]))
    assert other is not first and other.lon[3] != first.lon[3]
    points = sites.centroids()
    np.testing.assert_array_equal(points, np.array([s.centroid for s in sites]))


def test_driver_values_give_nulls_for_every_kind_of_missing_and_dates_for_timestamps():
    day = date(2025, 3, 1)
    assert driver_values(pd.Series([1.5, np.nan, 3.0])) == [1.5, None, 3.0]
    assert driver_values(pd.Series(["a", None, np.nan, pd.NA], dtype=object)) == ["a", None, None, None]
    assert driver_values(pd.Series(pd.to_datetime(["2025-03-01", None]))) == [day, None]
    assert driver_values(pd.Series([pd.Timestamp("2025-03-01"), None], dtype=object)) == [day, None]
    assert driver_values(pd.Series([day, None])) == [day, None]
    assert driver_values(pd.Series([2.0, 1.0], dtype="Float64").where([True, False])) == [2.0, None]
    assert driver_values(pd.Series([True, False])) == [True, False]
    ints = driver_values(pd.Series([1, 2], dtype=np.int16))
    assert ints == [1, 2] and all(type(v) is int for v in ints)  # plain Python values, not numpy scalars


def _forecast_records(site_ids: list[str]) -> pd.DataFrame:
    days = pd.date_range("2025-03-02", periods=3, freq="D")
    n = len(site_ids) * len(days)
    return pd.DataFrame(
        {
            "site_id": np.repeat(site_ids, len(days)),
            "indicator_id": "hot_days",
            "valid_day": np.tile(days.date, len(site_ids)),
            "lead_days": np.tile(np.arange(len(days)), len(site_ids)),
            "period_start": np.tile(days, len(site_ids)),  # datetime64: stored as dates
            "freq": "D",
            "value": np.where(np.arange(n) % 4 == 0, np.nan, np.arange(n) * 0.5),
            "level": np.arange(n) % 3,
            "material": np.where(np.arange(n) % 2 == 0, None, "stone"),
            "indicator_version": "1",
            "product": "synthetic stand-in",
            "product_version": "synthetic-1",
            "synthetic": True,
        }
    )


def test_forecast_values_written_in_bulk_read_back_unchanged(store):
    sites = _sites(3)
    store.upsert_sites(sites)
    issued = datetime(2025, 3, 2, tzinfo=UTC)
    issue = ForecastIssue(
        "era5_land", issued, date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 4), "p", "v", True, "attr"
    )
    records = _forecast_records(sites.ids)
    with store.session.begin() as session:
        assert replace_forecast(session, issue, records) == len(records)
    rows, issues = forecast_values(store, "s1", "hot_days")
    expected = records[records["site_id"] == "s1"]
    assert [r.valid_day for r in rows] == list(expected["valid_day"])
    assert [r.period_start for r in rows] == list(expected["period_start"].dt.date)
    assert [r.value for r in rows] == [None if np.isnan(v) else v for v in expected["value"]]
    assert [r.material for r in rows] == [None if pd.isna(m) else m for m in expected["material"]]
    assert [r.level for r in rows] == list(expected["level"])
    assert all(r.synthetic and r.issued == issued and r.source == "era5_land" for r in rows)
    assert issues["era5_land"].issued == issued
    with store.session.begin() as session:  # a new issue replaces the old one
        assert replace_forecast(session, issue, records.iloc[:2]) == 2
    assert len(forecast_values(store, "s0", "hot_days")[0]) == 2


def test_a_new_issue_replaces_the_old_one_range_by_range(store, monkeypatch):
    from monitor.store import forecasts

    monkeypatch.setattr(forecasts, "_BATCH", 4)  # ranges of about four rows: one or two sites each
    sites = _sites(5)
    store.upsert_sites(sites)
    old = ForecastIssue(
        "era5_land", datetime(2025, 3, 2, tzinfo=UTC), date(2025, 3, 1), None, None, "p", "v", True, "a"
    )
    with store.session.begin() as session:
        replace_forecast(session, old, _forecast_records(sites.ids))
    # the next issue: other values, one day later, for s1 and s3 only (s0 before, s2 between, s4 after)
    new = ForecastIssue(
        "era5_land", datetime(2025, 3, 3, tzinfo=UTC), date(2025, 3, 2), None, None, "p", "v", True, "b"
    )
    records = _forecast_records(["s1", "s3"])
    records["valid_day"] = records["valid_day"] + pd.Timedelta(days=1)
    records["value"] = records["value"] + 100.0
    assert len(forecasts._site_ranges(records["site_id"].to_numpy())) == 2
    with store.session.begin() as session:
        assert replace_forecast(session, new, records) == len(records)
    for site_id in ("s1", "s3"):
        rows, issues = forecast_values(store, site_id, "hot_days")
        expected = records[records["site_id"] == site_id]
        assert [r.valid_day for r in rows] == list(expected["valid_day"])
        assert [r.value for r in rows] == [None if np.isnan(v) else v for v in expected["value"]]
        assert {r.issued for r in rows} == {new.issued} and issues["era5_land"].issued == new.issued
    for site_id in ("s0", "s2", "s4"):
        assert forecast_values(store, site_id, "hot_days")[0] == []  # gone with the old issue


def test_site_ranges_hold_whole_sites_and_tile_the_rows():
    from monitor.store.forecasts import _site_ranges

    ids = np.array(["a"] * 3 + ["b"] * 5 + ["c"] + ["d"] * 4, dtype=object)
    assert _site_ranges(ids, 1) == [(0, 3), (3, 8), (8, 9), (9, 13)]
    assert _site_ranges(ids, 4) == [(0, 8), (8, 9), (9, 13)]
    assert _site_ranges(ids, 100) == [(0, 13)]


def test_api_series_reader_gives_the_frame_of_the_store(store):
    sites = _sites(2)
    store.upsert_sites(sites)
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    frames = []
    for site in sites.ids:
        for ind in ("hot_days", "frost_days"):
            frames.append(
                pd.DataFrame(
                    {
                        "site_id": site,
                        "indicator_id": ind,
                        "period_start": days.date,
                        "freq": "D",
                        "value": np.where(np.arange(40) % 7 == 0, np.nan, np.arange(40.0)),
                        "level": np.arange(40) % 4 - 1,
                        "material": np.where(np.arange(40) % 3 == 0, None, "brick"),
                        "indicator_version": "2",
                        "source": "era5_land",
                        "product": "reanalysis-era5-land",
                        "product_version": "v1",
                        "synthetic": site == "s0",
                        "coverage": np.where(np.arange(40) % 5 == 0, np.nan, 0.5),
                    }
                )
            )
    with store.session.begin() as session:
        store.upsert_values(session, pd.concat(frames, ignore_index=True))
    for args in (
        (["s0", "s1"], ["hot_days", "frost_days"], None, None),
        (["s1"], ["hot_days"], days[5], days[9]),
    ):
        expected = store.series(*args)
        got = read_series(store, *args)
        assert len(got) == len(expected) > 0
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert type(got["period_start"].iloc[0]) is date
    assert read_series(store, ["s0"], ["nothing"], None, None).empty


def _material_spec() -> indicators.IndicatorSpec:
    """hot_days with levels of its own for marble and timber (no registered indicator has any yet)."""
    base = indicators.get("hot_days")
    return indicators.IndicatorSpec(
        **{
            **base.__dict__,
            "id": "test_material_levels",
            "materials": ("marble", "limestone", "timber"),
            "material_levels": {
                "marble": indicators.Thresholds(low=1, moderate=2, high=3, severe=4),
                "timber": indicators.Thresholds(low=10, moderate=20, high=30, severe=40),
            },
        }
    )


@settings(max_examples=30, deadline=None)
@given(
    materials=st.lists(
        st.lists(st.sampled_from(["marble", "limestone", "timber", "granite", "bronze"]), max_size=3),
        min_size=1,
        max_size=12,
    ),
    overrides=st.lists(st.sampled_from([None, {}, {"low": 2.0}, {"low": 2.0, "high": 5.0}]), min_size=12),
    order=st.randoms(use_true_random=False),
)
def test_site_levels_from_site_set_arrays_equal_classifying_per_site_lists(materials, overrides, order):
    """Classification from `SiteSet.material_matrix` and `threshold_overrides` (computed once per set) gives
    what the per-site materials and overrides give, for site ids in any order."""
    from monitor.pipeline import site_levels

    spec = _material_spec()
    sites = SiteSet(
        make_site(f"s{i}", 2.0 + i, 45.0, materials=m, thresholds={spec.id: o} if o is not None else {})
        for i, (m, o) in enumerate(zip(materials, overrides, strict=False))
    )
    ids = sites.ids
    order.shuffle(ids)
    values = np.random.default_rng(len(ids)).uniform(0, 60, (len(ids), 4))
    values[0, 1] = np.nan
    codes, decider = site_levels(spec, sites, np.array(ids), values)
    expected = indicators.classify_sites(
        spec, values, [sites[s].materials for s in ids], [sites[s].thresholds.get(spec.id) for s in ids]
    )
    np.testing.assert_array_equal(codes, expected[0])
    np.testing.assert_array_equal(decider, expected[1])
    group, sets = sites.threshold_overrides(spec.id)
    for site, g in zip(sites, group, strict=True):
        assert sets[g] == (site.thresholds.get(spec.id) or None)


def test_worst_material_and_overrides_decide_levels_from_the_site_set():
    spec = _material_spec()
    sites = SiteSet(
        [
            make_site("a", 2.0, 45.0, materials=["marble", "timber"]),
            make_site("b", 3.0, 45.0, materials=["timber"]),
            make_site("c", 4.0, 45.0, materials=["granite"], thresholds={spec.id: {"low": 2.0}}),
        ]
    )
    from monitor.pipeline import site_levels

    codes, decider = site_levels(spec, sites, ["c", "b", "a"], np.array([[3.0], [3.0], [3.0]]))
    assert codes[:, 0].tolist() == [1, 0, 3]  # c: its own low of 2; b: timber's low of 10; a: marble high
    assert decider[:, 0].tolist() == [-1, spec.materials.index("timber"), spec.materials.index("marble")]


def test_site_positions_name_an_unknown_id():
    sites = _sites(3)
    np.testing.assert_array_equal(sites.positions(["s2", "s0"]), [2, 0])
    with pytest.raises(KeyError, match="nowhere"):
        sites.positions(["s1", "nowhere"])


def test_site_positions_of_the_sets_own_order_and_of_any_other_order_agree():
    sites = _sites(5)
    np.testing.assert_array_equal(sites.positions(sites.ids), np.arange(5))  # the set's own order
    np.testing.assert_array_equal(sites.positions(np.array(sites.ids)), np.arange(5))  # as numpy strings
    shuffled = ["s3", "s0", "s4", "s1", "s2"]  # as many ids, another order: looked up one by one
    np.testing.assert_array_equal(sites.positions(shuffled), [3, 0, 4, 1, 2])
    with pytest.raises(KeyError, match="nowhere"):
        sites.positions(["s0", "s1", "s2", "s3", "nowhere"])
