"""The projections API on the demo projections source: every demo site gets projected changes of the climate
indicators under two scenarios; chart, CSV and errors; projected alerts only under `kind=projected`."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.projections import compute_projections, projected_indicators
from monitor.sources.synthetic_projections import SyntheticProjections
from sites.io import load_demo_sites

#: A short set of periods keeps the test fast (the demo uses 1981–2010 and three 30-year periods).
SHORT = {"projections_baseline": "1986-1990", "projections_periods": "2021-2025,2046-2050"}


@pytest.fixture(scope="module")
def demo():
    """The 14 demo sites."""
    return load_demo_sites()


@pytest.fixture
def client(settings, store, demo):
    tuned = settings.model_copy(update=SHORT)
    store.upsert_sites(demo)
    report = compute_projections(tuned, store, SyntheticProjections(tuned), demo)
    assert not report.failed and len(report.runs) == 6
    with TestClient(create_app(tuned, store)) as c:
        yield c


def test_every_demo_site_has_projections_under_two_scenarios(client, demo):
    ids = [s.id for s in projected_indicators()]
    for site in demo.ids:
        for indicator in ids:
            body = client.get(f"/api/v1/sites/{site}/projections", params={"indicator": indicator}).json()
            assert [s["scenario"] for s in body["scenarios"]] == ["rcp_4_5", "rcp_8_5"], (site, indicator)
            assert body["synthetic"] is True and "not Copernicus" in body["attribution"]
            assert body["baseline_period"] == "1986-1990" and body["units"]
            assert "not a forecast" in body["note"]
            for scen in body["scenarios"]:
                assert [(p["start"], p["end"]) for p in scen["periods"]] == [(2021, 2025), (2046, 2050)]
                assert all(p["model_count"] == 3 for p in scen["periods"])
    body = client.get("/api/v1/sites/alhambra_granada/projections", params={"indicator": "hot_days"}).json()
    late = {s["scenario"]: s["periods"][-1] for s in body["scenarios"]}
    assert late["rcp_8_5"]["change"]["median"] > late["rcp_4_5"]["change"]["median"] > 0
    for p in late.values():
        assert p["future"]["min"] <= p["future"]["median"] <= p["future"]["max"]
        assert p["change_pct"] is None  # a temperature count: no relative change
    prov = body["provenance"]
    assert prov["bias_method"] == "none" and len(prov["models"]) == 3
    assert set(prov["calendars"]) >= {"360_day", "noleap"} and prov["splice"]
    rain = client.get(
        "/api/v1/sites/bryggen_bergen/projections", params={"indicator": "max_1day_precipitation"}
    )
    assert rain.json()["scenarios"][0]["periods"][0]["change_pct"]["median"] is not None


def test_scenario_filter_chart_csv_errors_parameters_and_projected_alerts(client):
    one = client.get(
        "/api/v1/sites/stonehenge/projections",
        params={"indicator": "freeze_thaw_cycles", "scenario": "rcp_8_5"},
    )
    assert [s["scenario"] for s in one.json()["scenarios"]] == ["rcp_8_5"]
    png = client.get("/api/v1/sites/stonehenge/projections.png", params={"indicator": "freeze_thaw_cycles"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 10_000
    text = client.get("/api/v1/sites/stonehenge/projections.csv", params={"indicator": "wet_frost_days"}).text
    assert "not Copernicus" in text and "rcp_4_5,2021,2025,change" in text
    for path, params, status in (
        ("/api/v1/sites/nowhere/projections", {"indicator": "hot_days"}, 404),
        ("/api/v1/sites/stonehenge/projections", {"indicator": "no_such"}, 404),
        ("/api/v1/sites/stonehenge/projections", {"indicator": "pm10_exceedance_days"}, 422),
        ("/api/v1/sites/stonehenge/projections", {"indicator": "hot_days", "scenario": "ssp9_9_9"}, 422),
        ("/api/v1/sites/stonehenge/projections", {}, 422),
        ("/api/v1/sites/stonehenge/projections.png", {"indicator": "no_such"}, 404),
    ):
        r = client.get(path, params=params)
        assert r.status_code == status, (path, params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    _every_parameter_has_a_description_and_example(client)
    _projected_alerts_are_apart_from_observed_and_forecast_alerts(client)


def _every_parameter_has_a_description_and_example(client):
    spec = client.get("/openapi.json").json()
    paths = [p for p in spec["paths"] if "/projections" in p]
    assert len(paths) == 3
    for path in paths:
        for param in spec["paths"][path]["get"]["parameters"]:
            schema = param.get("schema", {})
            assert param.get("description") or schema.get("description"), (path, param)
            assert param.get("examples") or param.get("example") or schema.get("examples"), (path, param)


def _projected_alerts_are_apart_from_observed_and_forecast_alerts(client):
    projected = client.get("/api/v1/alerts", params={"kind": "projected", "limit": 500}).json()["alerts"]
    assert projected, "the demo projections cross higher levels somewhere"
    assert all(a["kind"] == "projected" for a in projected)
    assert all("not a forecast" in a["provenance"]["note"] for a in projected)
    assert all(a["provenance"]["scenario"] in ("rcp_4_5", "rcp_8_5") for a in projected)
    for kind in ("observed", "forecast"):
        others = client.get("/api/v1/alerts", params={"kind": kind, "limit": 500}).json()["alerts"]
        assert all(a["kind"] == kind for a in others)
        assert not {a["id"] for a in others} & {a["id"] for a in projected}
