"""The dashboard's HTTP side without a browser: the page, its assets, and the status the map colours by."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.dashboard import STATIC_DIR
from monitor.pipeline import Pipeline
from monitor.store.variables import VariableStore
from tests.conftest import make_site


@pytest.fixture
def client(settings, store):
    with TestClient(create_app(settings, store)) as c:
        yield c


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


def test_the_page_loads_only_from_its_own_origin(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="en">' in html and "<main" in html and "<header" in html and "<footer" in html
    assert "__HM_CONFIG__" not in html and '"tileUrl": null' in html
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert any(ref.endswith("leaflet.js") for ref in references)
    assert [ref for ref in references if re.match(r"^(?:[a-z]+:)?//", ref)] == []
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "https:" not in csp


def test_every_input_has_a_label(client):
    html = client.get("/").text
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and set(ids) <= labelled


def test_a_tile_server_is_allowed_only_when_configured(settings, store):
    tiled = settings.model_copy(
        update={
            "dashboard_tile_url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
            "dashboard_tile_attribution": "© Example <contributors>",
        }
    )
    with TestClient(create_app(tiled, store)) as c:
        r = c.get("/")
    assert '"tileUrl": "https://{s}.tiles.example.org/{z}/{x}/{y}.png"' in r.text
    assert "\\u003ccontributors\\u003e" in r.text and "<contributors>" not in r.text
    assert "img-src 'self' data: blob: https://*.tiles.example.org;" in r.headers["content-security-policy"]


JS = ("text/javascript", "application/javascript")  # the name depends on the Python version


@pytest.mark.parametrize(
    ("path", "content_types"),
    [
        ("dashboard.js", JS),
        ("dashboard.css", ("text/css",)),
        ("vendor/leaflet/leaflet.js", JS),
        ("vendor/leaflet/leaflet.css", ("text/css",)),
        ("vendor/topojson-client/topojson-client.min.js", JS),
        ("vendor/world-atlas/countries-110m.json", ("application/json",)),
        ("vendor/leaflet/images/layers.png", ("image/png",)),
    ],
)
def test_static_assets_are_served_with_their_types(client, path, content_types):
    r = client.get(f"/dashboard/static/{path}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] in content_types
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == (STATIC_DIR / path).read_bytes()


def test_every_vendored_package_keeps_its_licence():
    folders = [p for p in (STATIC_DIR / "vendor").iterdir() if p.is_dir()]
    assert {p.name for p in folders} == {"leaflet", "topojson-client", "world-atlas"}
    for folder in folders:
        assert (folder / "LICENSE").read_text().strip(), folder


def test_missing_or_outside_files_are_404_problems(client):
    assert_problem(client.get("/dashboard/static/nothing.js"), 404)
    assert_problem(client.get("/dashboard/static/%2e%2e/__init__.py"), 404)
    assert_problem(client.get("/dashboard/static/..%2F..%2Fapp.py"), 404)


def test_the_page_stays_out_of_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/dashboard") for p in paths)
    status = paths["/api/v1/status"]["get"]
    assert status["responses"]["200"]["content"]["application/json"]["example"]["sites"]
    assert status["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "StatusPublic"
    )


def _values(site: str, indicator: str, levels: list[int], source: str = "era5_land") -> pd.DataFrame:
    periods = [date(2024 + i, 1, 1) for i in range(len(levels))]
    return pd.DataFrame(
        {
            "site_id": site,
            "indicator_id": indicator,
            "period_start": periods,
            "freq": "YS",
            "value": [float(10 * lv) for lv in levels],
            "level": levels,
            "material": None,
            "indicator_version": "1.0.0",
            "source": source,
            "product": "synthetic stand-in",
            "product_version": "synthetic-1",
            "synthetic": True,
            "coverage": 1.0,
        }
    )


def test_status_takes_the_highest_of_the_newest_levels(client, store):
    store.upsert_sites(
        [
            make_site("athens", 23.7257, 37.9715, buffer_m=500),
            make_site("bergen", 5.3242, 60.3975),
            make_site("krakow", 19.9383, 50.0614),
        ]
    )
    records = pd.concat(
        [
            _values("athens", "hot_days", [4, 3]),  # severe once, high now
            _values("athens", "freeze_thaw_cycles", [1, 1]),
            _values("athens", "pm10_exceedance_days", [0, 3], "cams_europe"),
            _values("krakow", "hot_days", [3, 0]),
            _values("krakow", "freeze_thaw_cycles", [-1, -1]),
        ]
    )
    with store.session.begin() as session:
        store.upsert_values(session, records)
    body = client.get("/api/v1/status").json()
    sites = {s["id"]: s for s in body["sites"]}
    assert body["numberMatched"] == 3 and list(sites) == ["athens", "bergen", "krakow"]
    athens, bergen, krakow = sites["athens"], sites["bergen"], sites["krakow"]
    assert athens["level"] == "high" and athens["level_indicators"] == ["hot_days", "pm10_exceedance_days"]
    assert athens["latest_period"] == "2025-01-01"
    assert athens["sources"] == ["era5_land", "cams_europe"] and athens["synthetic"] is True
    assert athens["attribution"].startswith("SYNTHETIC") and "Copernicus" in athens["attribution"]
    assert krakow["level"] == "none" and krakow["level_indicators"] == []
    assert bergen["level"] == "no_data" and bergen["sources"] == [] and bergen["attribution"] == ""
    # The buffer is the polygon grown by 500 m: about 0.0045° of latitude beyond the ±0.005° square.
    assert bergen["buffer"] is None and athens["buffer_m"] == 500
    lats = [lat for _, lat in athens["buffer"]["coordinates"][0]]
    assert max(lats) == pytest.approx(37.9715 + 0.005 + 500 / 111_000, abs=3e-4)
    assert body["synthetic"] is True and "Copernicus" in body["attribution"]
    page = client.get("/api/v1/status", params={"limit": 2}).json()
    assert [s["id"] for s in page["sites"]] == ["athens", "bergen"]
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert [s["id"] for s in client.get(nxt).json()["sites"]] == ["krakow"]
    assert_problem(client.get("/api/v1/status", params={"limit": 0}), 422)


def test_status_alert_counts_agree_with_the_alerts(client, settings, store):
    store.upsert_sites(
        [
            make_site("athens", 23.7257, 37.9715, materials=["marble"]),
            make_site("krakow", 19.9383, 50.0614, materials=["brick"]),
            make_site("bergen", 5.3242, 60.3975, materials=["timber"]),
        ]
    )
    Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run()
    opened = client.get("/api/v1/alerts", params={"status": "open", "limit": 1000}).json()["alerts"]
    assert opened, "the demo pipeline raised no alert"
    key = store.create_key("admin", "admin")
    first = opened[0]
    client.post(
        f"/api/v1/alerts/{first['id']}/ack", json={}, headers={"Authorization": f"Bearer {key.secret}"}
    ).raise_for_status()
    for site in client.get("/api/v1/status").json()["sites"]:
        mine = [a for a in opened if a["site"] == site["id"]]
        still_open = [a for a in mine if a["id"] != first["id"]]
        assert site["open_alerts"] == len(still_open)
        assert site["acknowledged_alerts"] == (1 if first["site"] == site["id"] else 0)
        order = ["low", "moderate", "high", "severe"]
        expected = max((a["severity"] for a in still_open), key=order.index) if still_open else None
        assert site["open_alert_severity"] == expected
        latest = client.get(f"/api/v1/sites/{site['id']}").json()["properties"]["latest"]
        levels = [v["level"] for v in latest.values() if v["level"] != "no_data"]
        assert site["level"] == max(levels, key=["none", *order].index)
