"""Keys and roles: a reader cannot write, a manager only touches its sites, a revoked key is refused."""

from datetime import date

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.pipeline import Pipeline
from monitor.store.variables import VariableStore
from tests.conftest import make_site


@pytest.fixture
def setup(settings, store):
    settings = settings.model_copy(update={"demo_end": date(2026, 8, 15)})  # inside the fire spell
    store.upsert_sites([make_site("athens", 23.7257, 37.9715), make_site("bergen", 5.3242, 60.3975)])
    Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run(["cems_fire"])
    keys = {
        "admin": store.create_key("a", "admin"),
        "manager": store.create_key("m", "manager", ["athens"]),
        "other_manager": store.create_key("o", "manager", ["bergen"]),
        "reader": store.create_key("r", "reader"),
    }
    with TestClient(create_app(settings, store)) as client:
        yield client, store, keys, settings


def auth(key):
    return {"Authorization": f"Bearer {key.secret}"}


def athens_alert(client):
    alerts = client.get("/api/v1/alerts", params={"site": "athens", "status": "open"}).json()["alerts"]
    assert alerts, "the demo fire spell leaves an alert at Athens"
    return alerts[0]["id"]


def test_anonymous_and_reader_cannot_write(setup):
    client, _, keys, _ = setup
    alert_id = athens_alert(client)
    r = client.post(f"/api/v1/alerts/{alert_id}/ack", json={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers=auth(keys["reader"])).status_code
        == 403
    )


def test_manager_only_touches_its_own_sites(setup):
    client, _, keys, _ = setup
    alert_id = athens_alert(client)
    other = client.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers=auth(keys["other_manager"]))
    assert other.status_code == 403
    ok = client.post(
        f"/api/v1/alerts/{alert_id}/ack",
        json={"note": "seen", "false_alarm": True},
        headers=auth(keys["manager"]),
    )
    assert ok.status_code == 200 and ok.json()["status"] == "acknowledged"
    assert ok.json()["acknowledged"]["false_alarm"] is True
    done = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={}, headers=auth(keys["manager"]))
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    again = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={}, headers=auth(keys["admin"]))
    assert again.status_code == 409
    history = [e["event"] for e in client.get(f"/api/v1/alerts/{alert_id}").json()["history"]]
    assert history[-2:] == ["acknowledged", "resolved"]


def test_revoked_and_unknown_keys_are_refused(setup):
    client, store, keys, _ = setup
    alert_id = athens_alert(client)
    store.revoke_key(keys["admin"].id)
    assert (
        client.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers=auth(keys["admin"])).status_code == 401
    )
    assert client.get("/api/v1/sites", headers={"Authorization": "Bearer hm_nope"}).status_code == 401
    assert client.get("/api/v1/sites", headers={"Authorization": "Basic abc"}).status_code == 401


def test_closed_reading_needs_a_key(settings, store):
    closed = settings.model_copy(update={"public_read": False})
    reader = store.create_key("r", "reader")
    with TestClient(create_app(closed, store)) as client:
        assert client.get("/api/v1/sites").status_code == 401
        assert client.get("/api/v1/sites", headers=auth(reader)).status_code == 200
        assert client.get("/health").status_code == 200
