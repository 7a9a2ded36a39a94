"""The HTTP API as an analyst uses it, on the demo pipeline's data."""

import csv
import io

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.pipeline import Pipeline
from monitor.store.variables import VariableStore
from tests.conftest import make_site

ALERT_FIELDS = {
    "id",
    "site",
    "indicator",
    "value",
    "units",
    "threshold",
    "level",
    "severity",
    "period",
    "onset",
    "status",
    "kind",
    "data_quality",
    "provenance",
    "attribution",
    "links",
}


@pytest.fixture
def client(settings, store):
    store.upsert_sites(
        [
            make_site("athens", 23.7257, 37.9715, materials=["marble"]),
            make_site("krakow", 19.9383, 50.0614, materials=["brick"]),
            make_site("bergen", 5.3242, 60.3975, materials=["timber"]),
        ]
    )
    Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run()
    with TestClient(create_app(settings, store)) as c:
        yield c


def assert_problem(resp, status):
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_health_ready_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/health").json()["sources"]["era5_land"]["newest_data"] == "2026-11-15"
    assert client.get("/ready").json()["status"] == "ready"
    text = client.get("/metrics").text
    assert "heritage_source_data_age_days" in text and 'heritage_alerts{status="open"}' in text


def test_sites_are_geojson_with_paging(client):
    r = client.get("/api/v1/sites", params={"limit": 2})
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == 3 and body["numberReturned"] == 2
    assert [f["id"] for f in body["features"]] == ["athens", "bergen"]
    nxt = next(link for link in body["links"] if link["rel"] == "next")
    assert [f["id"] for f in client.get(nxt["href"]).json()["features"]] == ["krakow"]
    assert client.get("/api/v1/sites", params={"bbox": "0,55,10,65"}).json()["numberMatched"] == 1
    assert_problem(client.get("/api/v1/sites", params={"limit": 100000}), 422)
    assert_problem(client.get("/api/v1/sites", params={"bbox": "1,2,3"}), 422)


def test_site_detail_and_missing_site(client):
    feature = client.get("/api/v1/sites/athens").json()
    assert feature["id"] == "athens" and feature["properties"]["materials"] == ["marble"]
    assert "hot_days" in feature["properties"]["latest"]
    assert_problem(client.get("/api/v1/sites/nowhere"), 404)


def test_indicator_catalogue(client):
    body = client.get("/api/v1/indicators").json()
    assert body["levels"] == ["none", "low", "moderate", "high", "severe"]
    ids = {i["id"]: i for i in body["indicators"]}
    assert ids["freeze_thaw_cycles"]["units"] == "days" and ids["freeze_thaw_cycles"]["references"]
    assert ids["fire_danger_class"]["levels"]["levels"]["extreme"] == "severe"


def test_alerts_carry_every_field(client):
    body = client.get("/api/v1/alerts").json()
    assert body["numberMatched"] > 0
    for alert in body["alerts"]:
        assert set(alert) >= ALERT_FIELDS
        assert alert["synthetic"] is True and "SYNTHETIC" in alert["attribution"]
        assert alert["data_quality"]["coverage"] == 1.0
        assert alert["provenance"]["product_version"]
    one = client.get(f"/api/v1/alerts/{body['alerts'][0]['id']}").json()
    assert one["history"][0]["event"] == "opened"
    assert_problem(client.get("/api/v1/alerts/alr_missing"), 404)
    severe = client.get("/api/v1/alerts", params={"severity": "severe"}).json()["alerts"]
    assert all(a["severity"] == "severe" for a in severe)
    assert_problem(client.get("/api/v1/alerts", params={"status": "bogus"}), 422)


def test_timeseries_json_and_csv(client):
    r = client.get("/api/v1/sites/krakow/timeseries", params={"indicator": "freeze_thaw_cycles"})
    body = r.json()
    assert body["units"] == "days" and body["synthetic"] is True and body["points"]
    assert all(p["level"] in ("none", "low", "moderate", "high", "severe", "no_data") for p in body["points"])
    r = client.get(
        "/api/v1/sites/krakow/timeseries",
        params={"indicator": "freeze_thaw_cycles", "format": "csv", "start": "2025-01-01"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and rows[0]["units"] == "days" and rows[0]["period_start"] == "2025-01-01"
    assert "SYNTHETIC" in rows[0]["attribution"] and rows[0]["source"] == "era5_land"
    accept = client.get(
        "/api/v1/sites/krakow/timeseries", params={"indicator": "hot_days"}, headers={"Accept": "text/csv"}
    )
    assert accept.headers["content-type"].startswith("text/csv")
    assert_problem(client.get("/api/v1/sites/krakow/timeseries", params={"indicator": "nope"}), 404)
    assert_problem(client.get("/api/v1/sites/krakow/timeseries"), 422)
    assert_problem(
        client.get(
            "/api/v1/sites/krakow/timeseries",
            params={"indicator": "hot_days", "start": "2025-02-01", "end": "2025-01-01"},
        ),
        422,
    )


def test_runs_and_openapi(client):
    runs = client.get("/api/v1/runs").json()
    assert runs["numberMatched"] >= 1 and {r["status"] for r in runs["runs"]} == {"ok"}
    spec = client.get("/openapi.json").json()
    assert "/api/v1/alerts" in spec["paths"] and client.get("/docs").status_code == 200
