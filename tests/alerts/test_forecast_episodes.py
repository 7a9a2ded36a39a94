"""Forecast episodes: onset and lead time, updates by newer issues without alert storms, escalation that
notifies, resolution when the forecast drops or observed data take over; forecast storage replacement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import indicators
from monitor.alerts.cap import certainty, urgency
from monitor.alerts.delivery import create_subscription, enqueue
from monitor.alerts.episodes import AlertRule, evaluate, evaluate_forecast, expire_forecasts, forecast_facts
from monitor.store.delivery_tables import AlertDeliveryRow
from monitor.store.forecasts import ForecastIssue, forecast_values, replace_forecast, stored_issue
from monitor.store.tables import AlertEventRow

FIRE = indicators.get("fire_danger_class")  # daily; EFFIS class 3 → high, 4 and 5 → severe
PM10 = indicators.get("pm10_exceedance_days")  # yearly count of days
RULE = AlertRule("high", kind="forecast")
ATTRIBUTION = "SYNTHETIC demo forecast standing in for CEMS fire danger indices; not Copernicus data."


def issue_time(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def fire_issue(site: str, issued: date, classes: list[float]) -> pd.DataFrame:
    """Forecast records of one issue: EFFIS classes per lead from the issue day on."""
    levels = FIRE.levels.classify(np.array(classes, dtype=float))
    days = [issued + timedelta(days=k) for k in range(len(classes))]
    return pd.DataFrame(
        {
            "site_id": site,
            "indicator_id": FIRE.id,
            "valid_day": days,
            "lead_days": list(range(len(classes))),
            "period_start": days,
            "freq": "D",
            "value": [float(c) for c in classes],
            "level": levels.astype(int),
            "material": None,
            "indicator_version": FIRE.version,
            "source": "cems_fire",
            "product": "synthetic stand-in for EFFIS fire danger forecast",
            "product_version": "synthetic-1",
            "synthetic": True,
        }
    )


def step(store, sites, records, issued: date, spec=FIRE, baseline=None, now=None) -> int:
    """One forecast issue through the alert engine and the outbox, as the pipeline runs it."""
    observed_until = issued - timedelta(days=1)
    with store.session.begin() as session:
        raised = evaluate_forecast(
            session,
            spec,
            records,
            sites,
            RULE,
            ATTRIBUTION,
            issue_time(issued),
            observed_until,
            baseline,
            now,
        )
        expire_forecasts(session, [spec.id], observed_until, now=now)
        enqueue(session, now=now)
    return raised


def alerts_of(store, site: str):
    rows, _ = store.list_alerts(site=site, kind="forecast", limit=100)
    return rows


def events(store, alert_id: str) -> list[str]:
    return [e.event for e in store.alert_events(alert_id)]


def test_an_issue_opens_one_alert_with_onset_lead_time_and_peak(store, sites):
    issued = date(2026, 8, 1)
    assert step(store, sites, fire_issue("athens", issued, [1, 2, 3, 4, 5, 4, 2]), issued) == 1
    (alert,) = alerts_of(store, "athens")
    assert alert.kind == "forecast" and alert.status == "open" and alert.sequence == 1
    assert alert.onset == date(2026, 8, 3)  # the first day at class 3 (high)
    assert alert.level == 4 and alert.value == 5.0 and alert.period_start == date(2026, 8, 5)
    facts = forecast_facts(alert)
    assert facts.issued == issue_time(issued)
    assert facts.lead_time_days == 2
    assert (facts.expected_start, facts.expected_end, facts.peak_day) == (
        date(2026, 8, 3),
        date(2026, 8, 6),
        date(2026, 8, 5),
    )
    assert alert.provenance["product"].endswith("EFFIS fire danger forecast")
    assert alert.attribution == ATTRIBUTION and alert.units == FIRE.units
    assert events(store, alert.id) == ["opened"]
    assert alerts_of(store, "krakow") == []  # no records there: nothing happens

    updated = alert.updated_at
    assert step(store, sites, fire_issue("athens", issued, [1, 2, 3, 4, 5, 4, 2]), issued) == 0
    (again,) = alerts_of(store, "athens")
    assert again.updated_at == updated and again.sequence == 1
    assert events(store, alert.id) == ["opened"]


def test_newer_issues_update_quietly_and_only_a_new_worst_level_notifies(store, sites):
    create_subscription(store, None, "high", "webhook", "https://receiver.example.org/hook")
    day = date(2026, 8, 1)
    step(store, sites, fire_issue("athens", day, [0, 0, 3, 3, 0]), day)
    (alert,) = alerts_of(store, "athens")
    assert (alert.onset, forecast_facts(alert).lead_time_days, alert.level) == (date(2026, 8, 3), 2, 3)

    day += timedelta(days=1)  # the spell now starts a day later, at the same level
    assert step(store, sites, fire_issue("athens", day, [0, 0, 3, 3, 0]), day) == 0
    (alert,) = alerts_of(store, "athens")
    assert alert.onset == date(2026, 8, 4) and forecast_facts(alert).lead_time_days == 2
    assert forecast_facts(alert).issued == issue_time(day) and alert.sequence == 1

    day += timedelta(days=1)  # worse than anything notified: escalation, a new message
    assert step(store, sites, fire_issue("athens", day, [0, 4, 5, 0]), day) == 1
    (alert,) = alerts_of(store, "athens")
    assert alert.level == 4 and alert.sequence == 2 and alert.onset == date(2026, 8, 4)

    day += timedelta(days=1)  # wavering below and back to the notified level: no new message
    assert step(store, sites, fire_issue("athens", day, [0, 3, 3]), day) == 0
    day += timedelta(days=1)
    assert step(store, sites, fire_issue("athens", day, [0, 4]), day) == 0
    (alert,) = alerts_of(store, "athens")
    assert alert.status == "open" and alert.sequence == 2 and alert.level == 4
    assert alert.onset == date(2026, 8, 6) and forecast_facts(alert).lead_time_days == 1
    assert events(store, alert.id) == ["opened", "updated", "escalated", "updated", "updated"]
    with store.session() as s:
        sent = s.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.sequence)).all()
    assert [d.event for d in sent] == ["opened", "escalated"]  # none for quiet updates
    payload = sent[1].payload  # the alert as it was when it escalated, forecast fields included
    assert payload["kind"] == "forecast" and payload["lead_time_days"] == 1
    assert payload["issued"] == "2026-08-03T00:00:00+00:00"
    assert payload["expected"] == {"start": "2026-08-04", "end": "2026-08-05"}
    assert payload["provenance"]["product"].endswith("EFFIS fire danger forecast")


def test_an_issue_without_the_exceedance_resolves_the_alert(store, sites):
    day = date(2026, 8, 1)
    step(store, sites, fire_issue("athens", day, [2, 3, 4]), day)
    (first,) = alerts_of(store, "athens")
    day += timedelta(days=1)
    assert step(store, sites, fire_issue("athens", day, [2, 2, 1, np.nan]), day) == 0
    (resolved,) = alerts_of(store, "athens")
    assert resolved.id == first.id and resolved.status == "resolved"
    note = store.alert_events(first.id)[-1].note
    assert "no longer shows high" in note and "2026-08-02 00:00 UTC" in note

    day += timedelta(days=1)  # all days without data: nothing is judged
    assert step(store, sites, fire_issue("athens", day, [np.nan, np.nan]), day) == 0
    day += timedelta(days=1)  # a new spell later is a new episode
    assert step(store, sites, fire_issue("athens", day, [1, 1, 3]), day) == 1
    assert {a.status for a in alerts_of(store, "athens")} == {"open", "resolved"}


def test_an_expected_period_reached_by_observed_data_hands_over_to_observed_alerts(store, sites):
    day = date(2026, 8, 1)
    step(store, sites, fire_issue("athens", day, [1, 1, 3, 3]), day)  # expected 3 to 4 August
    (alert,) = alerts_of(store, "athens")
    with store.session.begin() as session:
        assert expire_forecasts(session, [FIRE.id], date(2026, 8, 2)) == 0
    with store.session.begin() as session:  # the onset passed, the period goes on: kept
        assert expire_forecasts(session, [FIRE.id], date(2026, 8, 3)) == 0
    with store.session.begin() as session:
        assert expire_forecasts(session, [FIRE.id], date(2026, 8, 4)) == 1
    (alert,) = alerts_of(store, "athens")
    assert alert.status == "resolved" and alert.sequence == 2
    assert "observed alerts take over" in store.alert_events(alert.id)[-1].note


def test_an_open_observed_alert_covers_the_condition(store, sites):
    observed = fire_issue("athens", date(2026, 7, 30), [4, 4]).assign(coverage=1.0)
    with store.session.begin() as session:
        evaluate(session, FIRE, observed, sites, AlertRule("high"), ATTRIBUTION, date(2026, 7, 31))
    day = date(2026, 8, 1)
    assert step(store, sites, fire_issue("athens", day, [4, 4, 4]), day) == 0
    assert alerts_of(store, "athens") == []
    kinds = [a.kind for a in store.list_alerts(site="athens")[0]]
    assert kinds == ["observed"]


def pm10_issue(site: str, issued: date, counts: list[float]) -> pd.DataFrame:
    """Year-to-date PM10 exceedance-day counts per valid day."""
    frame = fire_issue(site, issued, [0.0] * len(counts))
    levels = PM10.levels.classify(np.array(counts, dtype=float))
    return frame.assign(
        indicator_id=PM10.id,
        period_start=date(issued.year, 1, 1),
        freq="YS",
        value=counts,
        level=levels.astype(int),
        source="cams_europe",
    )


def test_a_count_of_days_alerts_only_on_a_crossing_still_to_come(store, sites):
    day = date(2026, 11, 16)
    high = PM10.levels.high
    counts = [high - 1, high, high + 1]  # the forecast crosses the high level on the second day
    already = {"athens": int(PM10.levels.classify(np.array([high]))[0])}  # observed count already there
    assert step(store, sites, pm10_issue("athens", day, counts), day, spec=PM10, baseline=already) == 0
    before = {"athens": int(PM10.levels.classify(np.array([high - 1]))[0])}
    assert step(store, sites, pm10_issue("athens", day, counts), day, spec=PM10, baseline=before) == 1
    (alert,) = alerts_of(store, "athens")
    assert alert.onset == day + timedelta(days=1) and forecast_facts(alert).lead_time_days == 1
    assert alert.period_start == date(2026, 1, 1) and alert.freq == "YS"


@pytest.mark.parametrize(
    ("lead", "expected_urgency", "expected_certainty"),
    [
        (0, "Expected", "Likely"),
        (1, "Expected", "Likely"),
        (3, "Future", "Likely"),
        (6, "Future", "Possible"),
    ],
)
def test_cap_urgency_and_certainty_follow_the_lead_time(lead, expected_urgency, expected_certainty):
    assert urgency("forecast", "D", False, lead) == expected_urgency
    assert certainty("forecast", lead) == expected_certainty
    assert urgency("forecast", "D", True, lead) == "Past"
    assert certainty("observed", lead) == "Observed"


def forecast_issue(issued: datetime, synthetic: bool = True) -> ForecastIssue:
    return ForecastIssue(
        source="cems_fire",
        issued=issued,
        observed_until=issued.date() - timedelta(days=1),
        first_day=issued.date(),
        last_day=issued.date() + timedelta(days=2),
        product="synthetic stand-in for EFFIS fire danger forecast",
        product_version="synthetic-1",
        synthetic=synthetic,
        attribution=ATTRIBUTION,
    )


def stored_rows(store) -> list[tuple]:
    rows, _ = forecast_values(store, "athens", FIRE.id)
    return [(r.valid_day, r.lead_days, r.value, r.level, r.issued.replace(tzinfo=None)) for r in rows]


def test_storing_an_issue_replaces_the_previous_one(store, sites):
    first = issue_time(date(2026, 8, 1))
    records = pd.concat(
        [fire_issue("athens", first.date(), [1, 3, 4]), fire_issue("krakow", first.date(), [0])]
    )
    with store.session.begin() as session:
        assert replace_forecast(session, forecast_issue(first), records) == 4
    once = stored_rows(store)
    assert [r[:4] for r in once] == [
        (date(2026, 8, 1), 0, 1.0, 1),
        (date(2026, 8, 2), 1, 3.0, 3),
        (date(2026, 8, 3), 2, 4.0, 4),
    ]
    with store.session.begin() as session:  # the same issue again: the same values, no duplicates
        replace_forecast(session, forecast_issue(first), records)
    assert stored_rows(store) == once

    second = issue_time(date(2026, 8, 2))
    with store.session.begin() as session:
        replace_forecast(session, forecast_issue(second), fire_issue("athens", second.date(), [2, 2]))
        issue = stored_issue(session, "cems_fire")
        n = session.scalar(select(func.count()).select_from(AlertEventRow))
    assert [r[:2] for r in stored_rows(store)] == [(date(2026, 8, 2), 0), (date(2026, 8, 3), 1)]
    assert issue.issued.replace(tzinfo=UTC) == second and issue.first_day == second.date()
    assert forecast_values(store, "krakow", FIRE.id)[0] == []  # replaced for every site of the source
    assert n == 0  # storing values raises no alert by itself
