"""The fast paths of the daily refresh and of the API give what the plain paths gave.

- the demo GloFAS return levels: computed by blocks of sites, kept on disk for the next process;
- the synthetic generator's site parameters: computed once per site set;
- forecast values: written in bulk (executemany of tuples, COPY on PostgreSQL), read back unchanged;
- the API's time-series readers: the same frame as `Store.series`; the JSON points and the provenance
  summary agree with the full rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

import indicators
from api.routes.timeseries import effective_freq, read_frames, read_points, read_provenance, read_series
from indicators import level_name
from monitor.alerts.episodes import period_end
from monitor.sources import synthetic, synthetic_land
from monitor.store.forecasts import ForecastIssue, forecast_values, replace_forecast
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
    points = synthetic.site_points(sites)
    np.testing.assert_array_equal(points, np.array([s.centroid for s in sites]))


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


def _two_sources(store) -> pd.DatetimeIndex:
    """Daily fire weather at s0, s1 (s0 synthetic, 10 days from another source) and monthly hot days."""
    sites = _sites(2)
    store.upsert_sites(sites)
    days = pd.date_range("2023-12-20", periods=50, freq="D")
    months = pd.date_range("2023-01-01", periods=14, freq="MS")
    frames = []
    for site in sites.ids:
        for ind, periods, freq in (("fire_weather_index", days, "D"), ("hot_days", months, "MS")):
            n = len(periods)
            frames.append(
                pd.DataFrame(
                    {
                        "site_id": site,
                        "indicator_id": ind,
                        "period_start": periods.date,
                        "freq": freq,
                        "value": np.where(np.arange(n) % 7 == 0, np.nan, np.arange(n) * 1.5),
                        "level": np.arange(n) % 6 - 1,
                        "material": np.where(np.arange(n) % 3 == 0, None, "brick"),
                        "indicator_version": "2",
                        "source": np.where(np.arange(n) < 10, "cams_europe", "cems_fire")
                        if freq == "D"
                        else "era5_land",
                        "product": "p",
                        "product_version": "v1",
                        "synthetic": site == "s0",
                        "coverage": 0.5,
                    }
                )
            )
    with store.session.begin() as session:
        store.upsert_values(session, pd.concat(frames, ignore_index=True))
    return days


@pytest.mark.parametrize("resample", [None, "monthly", "yearly"])
def test_json_points_equal_the_full_rows_resampled(store, resample):
    """`read_points` (the JSON path: a few columns, no DataFrame) gives what the export path's frames give."""
    days = _two_sources(store)
    specs = [indicators.get("fire_weather_index"), indicators.get("hot_days")]
    for args in ((["s1", "s0"], None, None), (["s0"], days[3].date(), days[40].date())):
        frames = read_frames(store, args[0], specs, *args[1:], resample)
        points = read_points(store, args[0], specs, *args[1:], resample)
        for spec in specs:
            frame, cols = frames[spec.id], points[spec.id]
            assert len(cols["site_id"]) == len(frame) > 0
            assert cols["site_id"] == list(frame["site_id"])
            assert cols["period_start"] == [d.isoformat() for d in frame["period_start"]]
            freq = effective_freq(spec, resample)
            assert cols["period_end"] == [period_end(d, freq).isoformat() for d in frame["period_start"]]
            assert cols["value"] == [None if np.isnan(v) else v for v in frame["value"]]
            assert cols["level"] == [level_name(int(v)) for v in frame["level"]]
            assert cols["material"] == [None if pd.isna(m) else m for m in frame["material"]]


def test_provenance_summarises_the_selected_rows(store):
    days = _two_sources(store)
    both = read_provenance(store, ["s0", "s1"], ["fire_weather_index", "hot_days"], None, None)
    assert both.sources == "cams_europe+cems_fire+era5_land"  # by indicator as asked, then in time order
    assert both.synthetic and "SYNTHETIC" in both.attribution
    assert both.rows == 2 * (50 + 14)
    assert both.latest["fire_weather_index"]["source"] == "cems_fire"  # the source of the newest period
    assert both.newest is not None and both.newest.tzinfo is not None
    later = read_provenance(store, ["s1"], ["fire_weather_index"], days[10].date(), None)
    assert (later.sources, later.synthetic, later.rows) == ("cems_fire", False, 40)
    assert "SYNTHETIC" not in later.attribution and "Copernicus" in later.attribution
    none = read_provenance(store, ["s1"], ["nothing"], None, None)
    assert (none.rows, none.newest, none.sources, none.latest) == (0, None, "", {})
    etag, modified = both.validators("k")
    assert etag != later.validators("k")[0] and modified == both.newest.replace(microsecond=0)
