"""The pipeline end to end on the synthetic source: values stored once, alerts as episodes."""

import itertools
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select

from monitor.pipeline import Pipeline
from monitor.store.tables import AlertEventRow, AlertRow, IndicatorValueRow, RunRow
from monitor.store.variables import VariableStore
from tests.conftest import make_site

SITES = [
    make_site("athens", 23.7257, 37.9715, materials=["marble"]),
    make_site("krakow", 19.9383, 50.0614, materials=["brick", "limestone"]),
    make_site("bergen", 5.3242, 60.3975, materials=["timber"]),
]


@pytest.fixture
def pipeline(settings, store):
    store.upsert_sites(SITES)
    return Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))


def snapshot(store) -> dict:
    with store.session() as s:
        values = s.execute(
            select(
                IndicatorValueRow.site_id,
                IndicatorValueRow.indicator_id,
                IndicatorValueRow.period_start,
                IndicatorValueRow.value,
                IndicatorValueRow.level,
                IndicatorValueRow.computed_at,
            )
        ).all()
        alerts = s.execute(select(AlertRow.id, AlertRow.status, AlertRow.level, AlertRow.updated_at)).all()
        events = s.execute(select(AlertEventRow.id)).all()
    return {"values": sorted(values), "alerts": sorted(alerts), "events": sorted(events)}


def test_first_pass_stores_history_and_raises_alerts(pipeline, store, settings):
    report = pipeline.run()
    assert not report.failed
    by_source = {r.source: r for r in report.results}
    assert by_source["era5_land"].status == "ok" and by_source["era5_land"].values_written > 0
    frame = store.series(["athens"], ["hot_days"])
    assert frame["period_start"].min() == date(2024, 1, 1) and frame["period_start"].max() == date(
        2026, 11, 1
    )
    assert (frame["synthetic"]).all() and (frame["source"] == "era5_land").all()
    # the 2026 heat wave puts Athens' July into a high level, Bergen never gets there
    july = frame.set_index("period_start").loc[date(2026, 7, 1)]
    assert july["level"] >= 3
    alerts, total = store.list_alerts()
    assert total > 0
    assert {a.kind for a in alerts} == {"observed", "forecast"}  # the demo's fire forecast for Athens
    for a in alerts:
        assert a.attribution.startswith("SYNTHETIC") and a.units and a.source and a.product_version
    with store.session() as s:
        runs = s.scalars(select(RunRow)).all()
    assert {r.status for r in runs} == {"ok"}


def test_second_pass_changes_nothing(pipeline, store):
    pipeline.run()
    before = snapshot(store)
    report = pipeline.run()
    statuses = {r.source: r.status for r in report.results}
    assert statuses["era5_land"] == statuses["cems_fire"] == "up_to_date"
    assert set(statuses.values()) <= {"up_to_date", "skipped"}  # skipped: no demo data for that source
    assert snapshot(store) == before


def test_rerun_of_a_period_rewrites_nothing_and_duplicates_nothing(pipeline, store):
    pipeline.run()
    before = snapshot(store)
    report = pipeline.run(["era5_land"], date(2026, 1, 1), date(2026, 6, 30))
    assert report.results[0].status == "ok" and report.results[0].values_written == 0
    assert report.results[0].alerts_raised == 0
    assert snapshot(store) == before


def test_one_alert_per_episode_with_escalation_and_resolution(pipeline, store):
    pipeline.run()
    with store.session() as s:
        fire = s.scalars(
            select(AlertRow).where(AlertRow.site_id == "athens", AlertRow.indicator_id == "fire_danger_class")
        ).all()
        assert fire, "the August 2026 fire spell must raise an alert at Athens"
        # episodes never overlap: each opens after the previous one resolved
        spans = sorted((a.onset, a.last_period, a.status) for a in fire)
        for (_, last, status), (onset, _, _) in itertools.pairwise(spans):
            assert status == "resolved" and onset > last
        events = s.scalars(
            select(AlertEventRow).where(AlertEventRow.alert_id.in_([a.id for a in fire]))
        ).all()
    kinds = {e.event for e in events}
    assert {"opened", "resolved"} <= kinds
    opened = [e for e in events if e.event == "opened"]
    assert len(opened) == len(fire)


def test_failing_source_is_recorded_and_others_complete(pipeline, store, monkeypatch):
    from monitor import sources

    def broken(self, sites, start, end):
        raise sources.SourceUnavailableError("service answered 503 five times")

    monkeypatch.setattr(sources.DemoSource, "fetch", broken)
    report = pipeline.run(["era5_land"])
    assert report.results[0].status == "failed"
    assert "503" in report.results[0].error
    with store.session() as s:
        run = s.scalars(select(RunRow)).one()
    assert run.status == "failed" and "503" in run.error
    assert store.series(["athens"], ["hot_days"]).empty
    assert store.watermarks("era5_land") == {}


def test_site_threshold_override_changes_levels(pipeline, store, settings):
    athens = SITES[0].model_copy(
        update={"thresholds": {"hot_days": {"low": 0.5, "moderate": 1, "high": 2, "severe": 3}}}
    )
    store.upsert_sites([athens])
    pipeline.run(["era5_land"])
    frame = store.series(["athens"], ["hot_days"])
    jul = frame[pd.to_datetime(frame["period_start"]).dt.month == 7]
    assert (jul["level"] == 4).all()


def test_recompute_rewrites_only_what_a_new_version_changes(pipeline, store, monkeypatch):
    import dataclasses

    import indicators
    from indicators import core

    pipeline.run(["era5_land"])
    before = store.series(["athens", "krakow", "bergen"], ["hot_days"])
    unchanged = pipeline.recompute(["hot_days"])
    assert unchanged.results[0].status == "ok" and unchanged.results[0].values_written == 0
    spec = indicators.get("hot_days")
    monkeypatch.setitem(core._REGISTRY, "hot_days", dataclasses.replace(spec, version="2"))
    changed = pipeline.recompute(["hot_days"])
    after = store.series(["athens", "krakow", "bergen"], ["hot_days"])
    assert changed.results[0].values_written == len(before) == len(after)
    assert set(after["indicator_version"]) == {"2"}
    assert (after["value"].fillna(-1).values == before["value"].fillna(-1).values).all()
    assert (after["coverage"] == 1.0).all()
