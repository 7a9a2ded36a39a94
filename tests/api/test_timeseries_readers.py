"""The time-series readers of the JSON hot path agree with the full rows the exports read: `read_points`
(a few columns, no DataFrame) with `read_frames`, resampled or not, and `read_provenance` (one GROUP BY)
with the rows it summarises. Run on PostgreSQL too (CI's second database)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

import indicators
from api.routes.timeseries import effective_freq, read_frames, read_points, read_provenance
from indicators import level_name
from monitor.alerts.episodes import period_end
from sites.model import SiteSet
from tests.conftest import make_site


def _sites(n: int = 5) -> SiteSet:
    return SiteSet(make_site(f"s{i}", 2.0 + 3.1 * i, 41.0 + 1.7 * i) for i in range(n))


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


def test_rows_stored_with_either_timestamp_text_are_read_together(store):
    """A store upgraded in place holds `computed_at` in the driver adapter's text (with an offset) from
    older rows and in SQLAlchemy's (microseconds, no offset) from newer ones: one response reads both."""
    from sqlalchemy import text

    from api.routes.timeseries import read_series

    _two_sources(store)
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the text forms are SQLite's")
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE indicator_values SET computed_at = '2025-03-01 10:00:00+00:00' WHERE site_id = 's0'")
        )
    frame = read_series(store, ["s0", "s1"], ["hot_days"], None, None)
    stamps = frame.groupby("site_id")["computed_at"].first()
    assert str(stamps["s0"]) == "2025-03-01 10:00:00+00:00"
    assert stamps["s1"].tzinfo is not None and stamps["s1"] > stamps["s0"]


def test_provenance_groups_equal_the_rows_grouped(store):
    """The one-pass groups (series sharing one source and versions) and the exact GROUP BY (a series that
    changed source) both equal the selected rows grouped by pandas, with the same types."""
    from api.routes.timeseries import _provenance_groups, read_series

    days = _two_sources(store)
    keys = ["indicator_id", "source", "product", "product_version", "indicator_version"]
    for sites, inds, start in (
        (["s0", "s1"], ["hot_days"], None),  # uniform: one pass
        (["s1"], ["hot_days"], None),
        (["s0", "s1"], ["fire_weather_index", "hot_days"], None),  # fire weather changed source: exact
        (["s0"], ["fire_weather_index"], days[20].date()),  # after the change: uniform again
    ):
        rows = read_series(store, sites, inds, start, None)
        expected = (
            rows.groupby(keys)
            .agg(
                synthetic=("synthetic", "max"),
                newest=("computed_at", "max"),
                rows=("value", "size"),
                first=("period_start", "min"),
                last=("period_start", "max"),
            )
            .reset_index()
        )
        expected = sorted(
            [*r[:5], int(r[5]), r[6].to_pydatetime(), r[7], r[8], r[9]]
            for r in expected.itertuples(index=False)
        )
        groups = sorted(_provenance_groups(store, sites, inds, start, None))
        assert [[*g[:5], int(g[5]), *g[6:]] for g in groups] == expected
        assert all(g[6].tzinfo is not None and isinstance(g[8], date) for g in groups)
