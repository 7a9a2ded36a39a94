"""A demo-style pipeline run raises forecast alerts from the synthetic forecasts, kept apart from observed
data, visible with onset and lead time in the API, the CAP messages and the Atom feed; a rerun of the same
issue changes nothing and a newer issue updates the same alerts."""

from __future__ import annotations

from datetime import date, timedelta

import feedparser
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import func, select, text

from api.app import create_app
from monitor.pipeline import Pipeline
from monitor.sources.synthetic import FORECAST_EVENTS
from monitor.store.forecasts import ForecastValue, stored_forecast_values
from monitor.store.tables import IndicatorValueRow
from monitor.store.variables import VariableStore
from tests.conftest import make_site

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
EVENT = {e.variable: e for e in FORECAST_EVENTS}
SITES = [
    make_site("cologne", 6.9583, 50.9413, country="DE", materials=["sandstone"]),
    make_site("athens", 23.7257, 37.9715, country="GR", materials=["marble"]),
    make_site("bergen", 5.3242, 60.3975, country="NO", materials=["timber"]),
]
SOURCES = ["glofas", "cems_fire"]


@pytest.fixture
def ran(settings, store):
    store.upsert_sites(SITES)
    pipeline = Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))
    report = pipeline.run(SOURCES)
    assert not report.failed, report.results
    return pipeline


@pytest.fixture
def client(settings, store, ran):
    with TestClient(create_app(settings, store=store)) as c:
        yield c


def forecast_rows(store) -> list[tuple]:
    with store.engine.connect() as conn:
        return sorted(map(tuple, conn.execute(text("SELECT * FROM forecast_series")).all()), key=repr)


def test_forecast_alerts_carry_onset_lead_time_and_issue(client, settings, store):
    issued = settings.demo_end + timedelta(days=1)
    body = client.get("/api/v1/alerts", params={"kind": "forecast"}).json()
    by_site = {a["site"]: a for a in body["alerts"]}
    assert set(by_site) == {"cologne", "athens"} and body["numberMatched"] == 2
    flood, fire = by_site["cologne"], by_site["athens"]
    assert flood["indicator"] == "flood_return_period" and fire["indicator"] == "fire_danger_class"
    for alert, event in ((flood, EVENT["dis24"]), (fire, EVENT["fwi"])):
        assert alert["kind"] == "forecast" and alert["status"] == "open"
        assert alert["issued"] == f"{issued.isoformat()}T00:00:00Z"
        assert alert["lead_time_days"] == event.first_lead
        assert alert["onset"] == (issued + timedelta(days=event.first_lead)).isoformat()
        assert alert["expected"]["start"] == alert["onset"] <= alert["expected"]["end"]
        assert alert["provenance"]["issued"].startswith(issued.isoformat())
        assert alert["attribution"].startswith("SYNTHETIC demo forecast") and alert["synthetic"]
        assert alert["units"] == "1" and alert["severity"] == "severe"
    observed = client.get("/api/v1/alerts", params={"kind": "observed", "limit": 1000}).json()["alerts"]
    assert observed and all(a["issued"] is None and a["lead_time_days"] is None for a in observed)


def test_forecasts_never_enter_the_observed_values(client, settings, store):
    with store.session() as s:
        newest = s.scalar(select(func.max(IndicatorValueRow.period_start)))
    stored = stored_forecast_values(store)
    first, longest = stored["valid_day"].min(), stored["lead_days"].max()
    assert newest == settings.demo_end
    assert first == settings.demo_end + timedelta(days=1) and longest == 29  # GloFAS: 30 valid days
    series = client.get("/api/v1/sites/cologne/forecasts", params={"indicator": "flood_return_period"}).json()
    assert series["source"] == "glofas" and series["product"].endswith("cems-glofas-forecast")
    assert series["issued"].startswith((settings.demo_end + timedelta(days=1)).isoformat())
    assert len(series["points"]) == 30 and series["points"][0]["lead_days"] == 0
    assert "SYNTHETIC" in series["attribution"] and series["synthetic"]
    onset = next(p for p in series["points"] if p["level"] in ("high", "severe"))
    assert onset["lead_days"] == EVENT["dis24"].first_lead
    missing = client.get("/api/v1/sites/cologne/forecasts", params={"indicator": "nope"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert (
        client.get("/api/v1/sites/nowhere/forecasts", params={"indicator": "fire_danger_class"}).status_code
        == 404
    )
    none = client.get("/api/v1/sites/bergen/forecasts", params={"indicator": "pm10_exceedance_days"}).json()
    assert none["points"] == [] and none["issued"] is None  # forecast by a source not run here
    never = client.get("/api/v1/sites/bergen/forecasts", params={"indicator": "hot_days"})
    assert never.status_code == 422 and never.headers["content-type"] == "application/problem+json"
    body = never.json()
    assert "hot_days is never forecast" in body["detail"] and "flood_return_period" in body["detail"]
    assert set(body["forecast_indicators"]) == {
        "pm10_exceedance_days",
        "fire_danger_class",
        "flood_return_period",
    }


def test_cap_and_atom_say_when_the_forecast_condition_is_expected(client, cap_schema, settings):
    fire = client.get("/api/v1/alerts", params={"kind": "forecast", "site": "athens"}).json()["alerts"][0]
    doc = etree.fromstring(client.get(f"/api/v1/alerts/{fire['id']}.cap").content)
    cap_schema.assertValid(doc)
    info = doc.find("cap:info", NS)
    assert doc.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert info.findtext("cap:certainty", namespaces=NS) == "Likely"  # onset 2 days after the issue
    assert info.findtext("cap:urgency", namespaces=NS) == "Future"
    issued = settings.demo_end + timedelta(days=1)
    assert info.findtext("cap:effective", namespaces=NS) == f"{issued.isoformat()}T00:00:00-00:00"
    assert info.findtext("cap:onset", namespaces=NS).startswith(fire["onset"])  # local midnight, Athens
    assert info.findtext("cap:expires", namespaces=NS).startswith(
        (date.fromisoformat(fire["expected"]["end"]) + timedelta(days=1)).isoformat()
    )
    values = {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in info.findall("cap:parameter", NS)
    }
    assert values["lead_time_days"] == str(fire["lead_time_days"]) and values["kind"] == "forecast"
    description = info.findtext("cap:description", namespaces=NS)
    assert f"Lead time: {fire['lead_time_days']} days" in description and "Forecast issued" in description
    assert "expected from" in info.findtext("cap:headline", namespaces=NS)

    feed = client.get("/api/v1/alerts/feed.atom")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo
    root = etree.fromstring(feed.content)
    onsets = [
        e.findtext("cap:onset", namespaces=NS) for e in root.findall("{http://www.w3.org/2005/Atom}entry")
    ]
    assert fire["onset"] in onsets


def test_the_same_issue_again_changes_nothing_and_a_newer_one_updates(ran, settings, store):
    before_rows = forecast_rows(store)
    alerts_before, _ = store.list_alerts(kind="forecast")
    pipeline = ran  # a rerun of the last days reaches the same newest day: the same forecast issue
    report = pipeline.run(SOURCES, start=settings.demo_end - timedelta(days=3), end=settings.demo_end)
    assert not report.failed
    assert forecast_rows(store) == before_rows
    assert [(a.id, a.sequence, a.updated_at) for a in store.list_alerts(kind="forecast")[0]] == [
        (a.id, a.sequence, a.updated_at) for a in alerts_before
    ]

    later = settings.model_copy(update={"demo_end": settings.demo_end + timedelta(days=1)})
    Pipeline(later, store, VariableStore(settings.data_dir / "variables")).run(SOURCES)
    after, _ = store.list_alerts(kind="forecast")
    assert {a.id for a in after} == {a.id for a in alerts_before}  # the same episodes, no new alerts
    for alert in after:
        assert alert.status == "open" and alert.sequence == 1
        assert alert.provenance["issued"].startswith((later.demo_end + timedelta(days=1)).isoformat())
        assert [e.event for e in store.alert_events(alert.id)] == ["opened", "updated"]
    assert min(r.valid_day for r in forecast_values_of(store)) == later.demo_end + timedelta(days=1)


def forecast_values_of(store) -> list[ForecastValue]:
    return [ForecastValue(*row) for row in stored_forecast_values(store).itertuples(index=False)]


def test_a_failed_forecast_leaves_observed_data_and_is_taken_at_the_next_pass(settings, store, monkeypatch):
    from monitor.sources import DemoSource, SourceUnavailableError

    store.upsert_sites(SITES)
    pipeline = Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))

    def unavailable(self, sites, issued):
        raise SourceUnavailableError("EWDS cems-glofas-forecast: service kept answering 503")

    with monkeypatch.context() as m:
        m.setattr(DemoSource, "fetch_forecast", unavailable)
        (result,) = pipeline.run(["glofas"]).results
    assert result.status == "partial" and result.error.startswith("forecast: SourceUnavailableError")
    assert store.watermarks("glofas") and store.list_alerts(kind="forecast")[1] == 0
    assert forecast_rows(store) == []

    (again,) = pipeline.run(["glofas"]).results  # observed data are up to date: only the forecast is taken
    assert again.status == "ok" and again.run_id is not None and again.alerts_raised == 1
    (alert,) = store.list_alerts(kind="forecast")[0]
    assert alert.site_id == "cologne" and alert.indicator_id == "flood_return_period"
    (third,) = pipeline.run(["glofas"]).results
    assert third.status == "up_to_date" and third.run_id is None
