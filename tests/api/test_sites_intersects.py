"""`GET /api/v1/sites?intersects=`: GeoJSON or WKT, combined with the other filters and paging, answered
after every kind of site write; bad geometries are 422 problem+json. Runs on SQLite and PostGIS."""

from __future__ import annotations

import copy
import json

import pytest
from shapely.geometry import box, mapping

from api.routes.site_admin import FEATURE_EXAMPLE
from api.routes.sites import MAX_INTERSECTS_CHARS, MAX_INTERSECTS_VERTICES
from tests.api.conftest import assert_problem, auth

# The seeded sites are ±0.005° squares: athens (23.7257, 37.9715), krakow, bergen (5.3242, 60.3975).
GREECE_WKT = "POLYGON((23 37, 24.5 37, 24.5 38.5, 23 38.5, 23 37))"
NORTH = mapping(box(-10, 45, 30, 70))  # krakow and bergen


def matched(client, **params) -> tuple[int, list[str]]:
    r = client.get("/api/v1/sites", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["numberMatched"], [f["id"] for f in body["features"]]


def test_geojson_and_wkt_give_the_same_answer(world):
    c = world.client
    assert matched(c, intersects=GREECE_WKT) == (1, ["athens"])
    geojson = json.dumps(
        {"type": "Polygon", "coordinates": [[[23, 37], [24.5, 37], [24.5, 38.5], [23, 38.5], [23, 37]]]}
    )
    assert matched(c, intersects=geojson) == (1, ["athens"])
    assert matched(c, intersects=json.dumps(NORTH)) == (2, ["bergen", "krakow"])
    assert matched(c, intersects="POINT(5.3242 60.3975)") == (1, ["bergen"])
    assert matched(c, intersects="LINESTRING(5.3 60.3975, 5.35 60.3975)") == (1, ["bergen"])
    assert matched(c, intersects="POINT(5.34 60.3975)") == (0, [])  # just east of bergen's square


def test_intersects_with_filters_and_paging_links(world):
    c = world.client
    assert matched(c, intersects=json.dumps(NORTH), heritage_type="monument") == (1, ["bergen"])
    assert matched(c, intersects=json.dumps(NORTH), bbox="19,49,21,51") == (1, ["krakow"])
    r = c.get("/api/v1/sites", params={"intersects": json.dumps(NORTH), "limit": 1})
    body = r.json()
    assert body["numberMatched"] == 2 and [f["id"] for f in body["features"]] == ["bergen"]
    (nxt,) = [link["href"] for link in body["links"] if link["rel"] == "next"]
    body = c.get(nxt).json()
    assert body["numberMatched"] == 2 and [f["id"] for f in body["features"]] == ["krakow"]


def test_every_site_write_is_seen_by_spatial_queries(world):
    c, admin = world.client, auth(world.keys["admin"])
    at_gard, at_nimes = "POINT(4.535 43.9475)", "POINT(4.36 43.8375)"
    assert matched(c, intersects=at_gard)[0] == 0
    assert c.post("/api/v1/sites", json=FEATURE_EXAMPLE, headers=admin).status_code == 201
    assert matched(c, intersects=at_gard) == (1, ["pont_du_gard"])
    moved = copy.deepcopy(FEATURE_EXAMPLE)
    moved["geometry"] = mapping(box(4.355, 43.835, 4.365, 43.84))  # to Nîmes
    assert c.put("/api/v1/sites/pont_du_gard", json=moved, headers=admin).status_code == 200
    assert matched(c, intersects=at_gard)[0] == 0
    assert matched(c, intersects=at_nimes, bbox="4.3,43.8,4.4,43.9") == (1, ["pont_du_gard"])
    csv = b"id,name,lat,lon,buffer_m\nlouvain,Louvain,50.878,4.700,200\n"
    r = c.post("/api/v1/sites/import", files={"file": ("sites.csv", csv, "text/csv")}, headers=admin)
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert matched(c, intersects="POINT(4.7 50.878)") == (1, ["louvain"])
    assert c.delete("/api/v1/sites/louvain", headers=admin).status_code == 204
    assert matched(c, intersects="POINT(4.7 50.878)")[0] == 0


LONG_LINE = "LINESTRING(" + ",".join(f"{i % 90} {i // 90}" for i in range(MAX_INTERSECTS_VERTICES + 1)) + ")"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("athens", "not a GeoJSON geometry object or WKT"),
        ("POLYGON((0 0, 1 1", "not a GeoJSON geometry object or WKT"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}', "not a GeoJSON geometry object or WKT"),
        ('{"type": "Feature", "geometry": null}', "GeoJSON geometry object must have a type"),
        ("[1, 2]", "not a GeoJSON geometry object or WKT"),
        ("GEOMETRYCOLLECTION(POINT(1 1))", "GeometryCollection is not supported"),
        ("POINT EMPTY", "empty"),
        ("POINT(200 10)", "lon in [-180, 180]"),
        ('{"type": "Point", "coordinates": [NaN, 10]}', "lon in [-180, 180]"),
        ("POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))", "invalid geometry (Self-intersection"),
        (LONG_LINE, f"more than {MAX_INTERSECTS_VERTICES} vertices"),
    ],
)
def test_bad_geometries_are_422_problems(world, value, reason):
    body = assert_problem(world.client.get("/api/v1/sites", params={"intersects": value}), 422)
    assert reason in body["detail"]
    assert body["errors"] == [{"field": "query.intersects"}]


def test_an_overlong_geometry_is_refused_before_parsing(world):
    value = "POINT(1 1)" + " " * MAX_INTERSECTS_CHARS
    body = assert_problem(world.client.get("/api/v1/sites", params={"intersects": value}), 422)
    assert "intersects" in body["detail"] and str(MAX_INTERSECTS_CHARS) in body["detail"]


def test_the_parameter_is_documented(world):
    params = world.client.get("/openapi.json").json()["paths"]["/api/v1/sites"]["get"]["parameters"]
    (param,) = [p for p in params if p["name"] == "intersects"]
    assert "WKT" in param["description"] and param["schema"]["anyOf"][0]["maxLength"] == MAX_INTERSECTS_CHARS
