"""Creating, updating, deleting and importing sites; property filters; upload size limit."""

from __future__ import annotations

import copy
import json

from api.routes.site_admin import FEATURE_EXAMPLE
from tests.api.conftest import assert_problem, auth


def test_create_update_delete(world):
    c, admin = world.client, auth(world.keys["admin"])
    r = c.post("/api/v1/sites", json=FEATURE_EXAMPLE, headers=admin)
    assert r.status_code == 201 and r.headers["location"].endswith("/api/v1/sites/pont_du_gard")
    assert r.json()["properties"]["materials"] == ["limestone"]
    assert_problem(c.post("/api/v1/sites", json=FEATURE_EXAMPLE, headers=admin), 409)
    changed = copy.deepcopy(FEATURE_EXAMPLE)
    changed["properties"]["name"] = "Pont du Gard (aqueduct)"
    r = c.put("/api/v1/sites/pont_du_gard", json=changed, headers=admin)
    assert r.status_code == 200 and c.get("/api/v1/sites/pont_du_gard").json()["properties"]["name"].endswith(
        "(aqueduct)"
    )
    assert_problem(c.put("/api/v1/sites/athens", json=changed, headers=admin), 422)  # id mismatch
    assert_problem(c.put("/api/v1/sites/nowhere", json={**changed, "id": None}, headers=admin), 404)
    assert c.delete("/api/v1/sites/pont_du_gard", headers=admin).status_code == 204
    assert_problem(c.get("/api/v1/sites/pont_du_gard"), 404)
    assert_problem(c.delete("/api/v1/sites/pont_du_gard", headers=admin), 404)


def test_create_validates_like_the_importer(world):
    c, admin = world.client, auth(world.keys["admin"])
    bad = copy.deepcopy(FEATURE_EXAMPLE)
    bad["id"] = "Bad Id!"
    bad["geometry"] = {"type": "Point", "coordinates": [4.5, 43.9]}
    body = assert_problem(c.post("/api/v1/sites", json=bad, headers=admin), 422)
    assert "Polygon" in body["detail"]
    assert_problem(c.post("/api/v1/sites", json={"type": "Feature", "geometry": None}, headers=admin), 422)


def test_property_filters(world):
    c = world.client
    assert [f["id"] for f in c.get("/api/v1/sites", params={"material": "marble"}).json()["features"]] == [
        "athens"
    ]
    body = c.get("/api/v1/sites", params={"heritage_type": "Monument", "limit": 1}).json()
    assert body["numberMatched"] == 2 and [f["id"] for f in body["features"]] == ["athens"]


def _collection(*features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def test_import_reports_per_feature(world):
    c, admin = world.client, auth(world.keys["admin"])
    athens = c.get("/api/v1/sites/athens").json()
    athens["properties"].pop("latest")
    athens.pop("links")
    params = athens["properties"].pop("params")
    athens["properties"] |= params
    renamed = copy.deepcopy(athens) | {"id": "krakow"}
    renamed["properties"]["name"] = "Kraków renamed"
    renamed["properties"]["materials"] = ["brick"]
    broken = {"type": "Feature", "id": "broken", "properties": {"name": "B"}, "geometry": None}
    data = _collection(FEATURE_EXAMPLE, athens, renamed, broken)
    r = c.post(
        "/api/v1/sites/import", files={"file": ("reg.geojson", data, "application/geo+json")}, headers=admin
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(f["index"], f["id"], f["status"]) for f in body["features"]] == [
        (1, "pont_du_gard", "stored"),
        (2, "athens", "unchanged"),
        (3, "krakow", "updated"),
        (4, "broken", "rejected"),
    ]
    assert body["features"][3]["reasons"] == ["no geometry (null)"]
    assert (body["stored"], body["updated"], body["unchanged"], body["rejected"]) == (1, 1, 1, 1)


def test_import_strict_and_csv_and_bad_files(world):
    c, admin = world.client, auth(world.keys["admin"])
    broken = {"type": "Feature", "id": "broken", "properties": {"name": "B"}, "geometry": None}
    data = _collection(FEATURE_EXAMPLE, broken)
    r = c.post(
        "/api/v1/sites/import",
        params={"strict": True},
        files={"file": ("reg.geojson", data, "application/geo+json")},
        headers=admin,
    )
    body = assert_problem(r, 422)
    assert body["report"]["rejected"] == 2 and body["report"]["stored"] == 0
    assert_problem(c.get("/api/v1/sites/pont_du_gard"), 404)
    csv = b"id,name,lat,lon,buffer_m\nlouvain,Louvain,50.878,4.700,200\n"
    r = c.post("/api/v1/sites/import", files={"file": ("sites.csv", csv, "text/csv")}, headers=admin)
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert_problem(
        c.post("/api/v1/sites/import", files={"file": ("x.txt", b"hi", "text/plain")}, headers=admin), 415
    )
    assert_problem(
        c.post("/api/v1/sites/import", files={"file": ("x.geojson", b"{", "text/plain")}, headers=admin), 422
    )


def test_upload_size_limit(world):
    c, admin = world.client, auth(world.keys["admin"])
    big = b" " * (int(world.settings.api_max_upload_mb * 1_000_000) + 10)
    r = c.post(
        "/api/v1/sites/import", files={"file": ("big.geojson", big, "application/geo+json")}, headers=admin
    )
    assert_problem(r, 413)

    def chunks():  # no Content-Length: counted as read
        for _ in range(21):
            yield b" " * 1_000_000

    r = c.post(
        "/api/v1/sites/import",
        content=chunks(),
        headers=admin | {"content-type": "multipart/form-data; boundary=x"},
    )
    assert_problem(r, 413)


def test_roles_on_site_writes(world):
    c, keys = world.client, world.keys
    other = copy.deepcopy(FEATURE_EXAMPLE) | {"id": "krakow_new"}
    # anonymous and reader
    assert_problem(c.post("/api/v1/sites", json=FEATURE_EXAMPLE), 401)
    assert_problem(c.post("/api/v1/sites", json=FEATURE_EXAMPLE, headers=auth(keys["reader"])), 403)
    assert_problem(c.delete("/api/v1/sites/athens", headers=auth(keys["reader"])), 403)
    # a manager: its own sites only
    manager = auth(keys["manager"])
    assert_problem(c.post("/api/v1/sites", json=other, headers=manager), 403)
    assert c.post("/api/v1/sites", json=FEATURE_EXAMPLE, headers=manager).status_code == 201
    krakow = copy.deepcopy(FEATURE_EXAMPLE) | {"id": None}
    assert_problem(c.put("/api/v1/sites/krakow", json=krakow, headers=manager), 403)
    assert c.put("/api/v1/sites/athens", json=krakow, headers=manager).status_code == 200
    assert_problem(c.delete("/api/v1/sites/athens", headers=manager), 403)  # deleting is for admins
    data = _collection(other)
    r = c.post(
        "/api/v1/sites/import", files={"file": ("r.geojson", data, "application/geo+json")}, headers=manager
    )
    assert_problem(r, 403)
    assert_problem(c.get("/api/v1/sites/krakow_new"), 404)
    # a revoked key
    world.store.revoke_key(keys["admin"].id)
    assert_problem(c.delete("/api/v1/sites/bergen", headers=auth(keys["admin"])), 401)
    assert_problem(
        c.post("/api/v1/sites/import", files={"file": ("r.geojson", data)}, headers=auth(keys["admin"])), 401
    )
