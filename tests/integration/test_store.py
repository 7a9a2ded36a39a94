"""The store on SQLite and PostgreSQL: migrations, sites, idempotent value upserts, keys."""

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import inspect

from monitor.store.db import upgrade
from monitor.store.tables import UTCDateTime
from sites import SiteNotFoundError
from tests.conftest import make_site


def test_migrations_create_every_table_and_are_idempotent(store):
    upgrade(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "sites",
        "indicator_values",
        "alerts",
        "alert_events",
        "runs",
        "api_keys",
        "subscriptions",
        "watermarks",
        "alembic_version",
    } <= tables


def test_sites_upsert_counts_and_roundtrip(store):
    a = make_site("a_site", 12.0, 45.0, materials=["Brick", "marble"], country="it")
    counts = store.upsert_sites([a, make_site("b_site", 2.0, 48.0)])
    assert (counts.created, counts.updated, counts.unchanged) == (2, 0, 0)
    assert store.upsert_sites([a]).unchanged == 1
    changed = a.model_copy(update={"name": "Renamed"})
    assert store.upsert_sites([changed]).updated == 1
    got = store.get_site("a_site")
    assert got.name == "Renamed" and got.materials == ["brick", "marble"] and got.country == "IT"
    assert got.geometry.equals(a.geometry)
    with pytest.raises(SiteNotFoundError):
        store.get_site("missing")


def test_list_sites_filters_by_bbox_and_pages(store):
    store.upsert_sites([make_site(f"s{i:02d}", 10.0 + i, 45.0) for i in range(10)])
    sites, total = store.list_sites(bbox=(11.5, 44, 14.5, 46))
    assert [s.id for s in sites] == ["s02", "s03", "s04"] and total == 3
    page, total = store.list_sites(limit=4, offset=8)
    assert [s.id for s in page] == ["s08", "s09"] and total == 10


def _values(value: float, level: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": ["a_site"] * 2,
            "indicator_id": "hot_days",
            "period_start": [date(2024, 1, 1), date(2024, 2, 1)],
            "freq": "MS",
            "value": [value, None],
            "level": [level, -1],
            "material": [None, None],
            "indicator_version": "1",
            "source": "era5_land",
            "product": "p",
            "product_version": "v1",
            "synthetic": True,
            "coverage": [1.0, 1.0],
        }
    )


def test_value_upsert_never_duplicates_and_skips_unchanged_rows(store):
    store.upsert_sites([make_site("a_site", 12.0, 45.0)])
    with store.session.begin() as s:
        assert store.upsert_values(s, _values(3.0, 0)) == 2
    with store.session.begin() as s:
        assert store.upsert_values(s, _values(3.0, 0)) == 0  # identical: nothing written
    with store.session.begin() as s:
        assert store.upsert_values(s, _values(12.0, 2)) == 1  # only the changed row
    frame = store.series(["a_site"], ["hot_days"])
    assert len(frame) == 2
    assert frame["value"].iloc[0] == 12.0 and frame["level"].iloc[0] == 2 and pd.isna(frame["value"].iloc[1])


def test_keys_are_hashed_and_revocable(store):
    key = store.create_key("ci", "manager", ["a_site"])
    assert key.secret.startswith("hm_")
    rows = store.list_keys()
    assert len(rows) == 1 and key.secret not in (rows[0].key_hash, rows[0].prefix)
    assert store.verify_key(key.secret).role == "manager"
    assert store.verify_key("hm_wrong") is None
    assert store.revoke_key(key.id) and store.verify_key(key.secret) is None
    assert not store.revoke_key(key.id)


def test_timestamps_come_back_in_utc_on_every_database(store):
    """SQLite keeps no offset: stored instants must still read back as aware UTC datetimes."""
    run_id = store.start_run("era5_land", "demo", date(2026, 1, 1), date(2026, 1, 31), 3)
    (run,), _ = store.list_runs("era5_land")
    assert run.id == run_id and run.started_at.tzinfo is not None
    assert abs(run.started_at - datetime.now(UTC)) < timedelta(minutes=5)
    store.finish_run(run_id, "ok", 0, 0, None)
    (run,), _ = store.list_runs("era5_land")
    assert run.finished_at.utcoffset() == timedelta(0) and run.finished_at >= run.started_at
    # an aware instant in another zone is stored as the same instant
    cest = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    bound = UTCDateTime().process_bind_param(cest, None)
    assert bound == cest and bound.tzinfo == UTC and bound.hour == 12


def test_watermarks_only_move_forward_and_give_the_oldest_day_of_a_set_of_sites(store):
    store.upsert_sites([make_site(f"w{i}", 10.0 + i, 45.0) for i in range(3)])
    everyone = ["w0", "w1", "w2"]
    with store.session.begin() as s:
        store.set_watermarks(s, "era5_land", ["w0", "w1"], date(2025, 3, 4), "v1")
        store.set_watermarks(s, "era5_land", ["w1"], date(2025, 3, 9), "v1")
        store.set_watermarks(s, "era5_land", ["w0"], date(2025, 3, 1), "v1")  # backwards: ignored
    assert store.watermarks("era5_land") == {"w0": date(2025, 3, 4), "w1": date(2025, 3, 9)}
    assert store.oldest_watermark("era5_land", everyone) is None  # w2 has none yet
    assert store.oldest_watermark("era5_land", ["w1", "w0"]) == date(2025, 3, 4)  # a subset
    assert store.oldest_watermark("era5_land", ["w1"]) == date(2025, 3, 9)
    assert store.oldest_watermark("cams_europe", ["w1"]) is None  # another source
    with store.session.begin() as s:
        store.set_watermarks(s, "era5_land", ["w2"], date(2025, 2, 27), "v1")
    assert store.oldest_watermark("era5_land", everyone) == date(2025, 2, 27)  # every site: in SQL
    assert store.oldest_watermark("era5_land", []) is None
