"""Forecast path regressions: a cancelled pass stores nothing of a new issue, a count's baseline holds only
in its own period, a persisting exceedance stays one alert notified once, counts to date equal the
indicator over each slice, and the API refuses indicators that are never forecast."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sqlalchemy import func, select

import indicators
from monitor import scheduler as sched
from monitor.alerts.delivery import create_subscription
from monitor.alerts.episodes import evaluate_forecast
from monitor.pipeline import Pipeline, counts_to_date, forecastable, period_floor
from monitor.store.delivery_tables import AlertDeliveryRow
from monitor.store.forecasts import ForecastSeriesRow, stored_issue
from monitor.store.tables import AlertRow
from monitor.store.variables import VariableStore
from tests.alerts.test_forecast_episodes import (
    ATTRIBUTION,
    FIRE,
    RULE,
    alerts_of,
    events,
    fire_issue,
    issue_time,
    step,
)
from tests.conftest import make_site


# ---- a cancelled pass writes nothing of the new issue --------------------------------------------------
@pytest.mark.parametrize("trip", ["after_fetch", "before_commit"])
def test_a_cancelled_forecast_step_stores_nothing_of_the_new_issue(settings, store, monkeypatch, trip):
    from monitor import pipeline as pipeline_module
    from monitor.sources import DemoSource

    store.upsert_sites([make_site("athens", 23.7257, 37.9715, country="GR", materials=["marble"])])
    pipeline = Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))
    token = sched.CancelToken()
    pipeline.cancel = token
    reason = "the pass exceeded its time budget of 1 s (HM_SOURCE_TIME_BUDGET_SECONDS)"
    if trip == "after_fetch":
        fetch = DemoSource.fetch_forecast

        def fetch_then_cancel(self, sites, issued):
            cube = fetch(self, sites, issued)
            token.cancel(reason)
            return cube

        monkeypatch.setattr(DemoSource, "fetch_forecast", fetch_then_cancel)
    else:
        enqueue = pipeline_module.enqueue

        def enqueue_then_cancel(session, **kwargs):  # the budget runs out inside the transaction
            enqueue(session, **kwargs)
            token.cancel(reason)

        monkeypatch.setattr(pipeline_module, "enqueue", enqueue_then_cancel)
        monkeypatch.setattr(pipeline_module.Pipeline, "_chunk", lambda *a, **k: None)  # forecast only
    result = pipeline._pass("cems_fire", store.site_set(), None, None)
    assert result.status == "failed" and "PassCancelledError: the pass exceeded" in result.error
    with store.session() as s:
        assert stored_issue(s, "cems_fire") is None
        assert s.scalar(select(func.count()).select_from(ForecastSeriesRow)) == 0
        assert s.scalar(select(func.count()).select_from(AlertRow).where(AlertRow.kind == "forecast")) == 0
        assert s.scalar(select(func.count()).select_from(AlertDeliveryRow)) == 0


# ---- the baseline of a count of days holds in its own period only -----------------------------------
LOW = {"high": 2, "severe": 5}  # a site's own levels, low enough for a new period to cross within days


def count_issue(spec, site: str, issued: date, counts: list[float]) -> pd.DataFrame:
    """Counts to date per valid day, restarting with each period (levels from the site's own levels)."""
    frame = fire_issue(site, issued, [0.0] * len(counts))
    levels = spec.thresholds_for(None, LOW).classify(np.array(counts, dtype=float))
    return frame.assign(
        indicator_id=spec.id,
        period_start=[period_floor(d, spec.freq) for d in frame["valid_day"]],
        freq=spec.freq,
        value=counts,
        level=levels.astype(int),
    )


@pytest.mark.parametrize(
    ("spec_id", "issued"),
    [("pm10_exceedance_days", date(2026, 12, 31)), ("hot_days", date(2026, 8, 31))],
)
def test_a_count_s_baseline_does_not_hide_a_crossing_in_the_next_period(store, sites, spec_id, issued):
    spec = indicators.get(spec_id)
    high = int(spec.thresholds_for(None, LOW).classify(np.array([2.0]))[0])
    assert high == indicators.LEVEL_CODES["high"]
    counts = [2.0, 0.0, 1.0, 2.0, 3.0]  # at high on the last day of the period, then a new period crosses
    records = count_issue(spec, "athens", issued, counts)
    assert step(store, sites, records, issued, spec=spec, baseline={"athens": high}) == 1
    (alert,) = alerts_of(store, "athens")
    assert alert.onset == issued + timedelta(days=3)  # the new period's crossing, not the last day's count
    assert alert.period_start == period_floor(issued + timedelta(days=1), spec.freq)
    same_period_only = records.iloc[:1]  # within the observed period the baseline still holds
    other = "krakow"
    assert step(store, sites, same_period_only.assign(site_id=other), issued, spec, {other: high}) == 0
    assert alerts_of(store, other) == []


# ---- a persisting exceedance: one alert, one notification ------------------------------------------
def test_a_persisting_exceedance_stays_one_alert_notified_once(store, sites):
    create_subscription(store, None, "high", "webhook", "https://receiver.example.org/hook")
    first = date(2026, 8, 1)
    spell = {first + timedelta(days=k) for k in range(1, 6)}  # 2 to 6 August at class 3 (high)
    onsets = []
    for k in range(3):  # three daily issues; the first days of the spell pass into observed data
        day = first + timedelta(days=k)
        classes = [3.0 if day + timedelta(days=j) in spell else 1.0 for j in range(8)]
        step(store, sites, fire_issue("athens", day, classes), day)
        (alert,) = alerts_of(store, "athens")
        assert alert.status == "open"
        onsets.append((alert.onset, alert.provenance["lead_time_days"]))
    assert onsets == [(date(2026, 8, 2), 1), (date(2026, 8, 2), 0), (date(2026, 8, 3), 0)]
    assert events(store, alert.id) == ["opened", "updated"]  # the second issue only moved the lead time
    with store.session() as s:
        assert [d.event for d in s.scalars(select(AlertDeliveryRow))] == ["opened"]

    day = date(2026, 8, 7)  # the whole spell observed, the next issue quiet: observed alerts take over
    step(store, sites, fire_issue("athens", day, [1.0, 1.0]), day)
    (alert,) = alerts_of(store, "athens")
    assert alert.status == "resolved" and "observed alerts take over" in store.alert_events(alert.id)[-1].note


def test_a_peak_ties_to_the_earliest_day_and_skips_missing_values(store, sites):
    day = date(2026, 8, 1)
    step(store, sites, fire_issue("athens", day, [1, 4, np.nan, 5, 4]), day)
    (alert,) = alerts_of(store, "athens")
    assert (alert.level, alert.value, alert.period_start) == (4, 5.0, date(2026, 8, 4))
    step(store, sites, fire_issue("krakow", day, [4, 4, 3]), day)
    (tied,) = alerts_of(store, "krakow")
    assert tied.period_start == date(2026, 8, 1) and tied.provenance["peak_day"] == "2026-08-01"


def test_only_sites_with_an_exceedance_or_a_forecast_alert_are_read(store, sites):
    quiet = pd.concat([fire_issue(s, date(2026, 8, 1), [1, 2, 1]) for s in ("athens", "krakow")])
    with store.session.begin() as session:
        n = evaluate_forecast(
            session, FIRE, quiet, sites, RULE, ATTRIBUTION, issue_time(date(2026, 8, 1)), date(2026, 7, 31)
        )
    assert n == 0 and store.list_alerts(kind="forecast")[1] == 0


# ---- counts to date in one computation equal the indicator over each slice ---------------------------
def _cube(days: pd.DatetimeIndex, sites: list[str], seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (len(sites), len(days))

    def var(values, units):
        values = values.astype(np.float32)
        values[rng.random(shape) < 0.05] = np.nan  # a few missing days
        return (("site", "time"), values, {"units": units})

    tasmin = 270.0 + 30.0 * rng.random(shape)
    return xr.Dataset(
        {
            "tasmin": var(tasmin, "K"),
            "tasmax": var(tasmin + 20.0 * rng.random(shape), "K"),
            "pr": var(rng.exponential(2e-5, shape), "kg m-2 s-1"),
            "pm10": var(20.0 + 60.0 * rng.random(shape), "ug m-3"),
        },
        coords={"site": sites, "time": days},
    )


COUNTS = [s for s in indicators.catalog() if s.freq != "D" and forecastable(s)]


@pytest.mark.parametrize("spec", COUNTS, ids=[s.id for s in COUNTS])
def test_counts_to_date_equal_the_indicator_over_each_slice(spec):
    observed_until = date(2026, 12, 29)
    start = period_floor(observed_until, spec.freq)
    days = pd.date_range(start, observed_until + timedelta(days=6))
    cube = _cube(days, ["a", "b", "c"], seed=len(spec.id))
    ends = list(days[days >= pd.Timestamp(observed_until)])
    got = counts_to_date(spec, cube, ends, {})
    for k, end in enumerate(ends):
        first = pd.Timestamp(period_floor(end.date(), spec.freq))
        alone = indicators.compute(spec.id, cube.sel(time=slice(first, end))).transpose("site", "time")
        np.testing.assert_array_equal(got.isel(time=k).values, alone.isel(time=-1).values)
    assert got.dims == ("site", "time") and list(got["site"].values) == ["a", "b", "c"]
