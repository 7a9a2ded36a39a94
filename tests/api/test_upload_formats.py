"""Bulk import by upload of a GeoPackage and a zipped Shapefile, as registers deliver them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box, shape

from tests.api.conftest import assert_problem, auth

LOUVRE = box(2.3330, 48.8595, 2.3390, 48.8625)
PANTHEON = box(12.4760, 41.8983, 12.4773, 41.8992)


def _register(crs: int) -> gpd.GeoDataFrame:
    """Two monuments in a national CRS, with the flat property names of our site files."""
    frame = gpd.GeoDataFrame(
        {
            "id": ["louvre", "pantheon"],
            "name": ["Palais du Louvre", "Pantheon"],
            "materials": ["limestone", "brick; concrete"],
            "buffer_m": [150.0, 80.0],
            "country": ["FR", "IT"],
        },
        geometry=[LOUVRE, PANTHEON],
        crs=4326,
    )
    return frame.to_crs(crs)


def _upload(world, name: str, data: bytes, media_type: str, **params):
    return world.client.post(
        "/api/v1/sites/import",
        params=params,
        files={"file": (name, data, media_type)},
        headers=auth(world.keys["admin"]),
    )


def test_geopackage_upload_is_reprojected_and_stored(world, tmp_path: Path) -> None:
    path = tmp_path / "register.gpkg"
    _register(3035).to_file(path, layer="monuments")
    r = _upload(world, "register.gpkg", path.read_bytes(), "application/geopackage+sqlite3")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["stored"], body["rejected"]) == (2, 0)
    assert [f["status"] for f in body["features"]] == ["stored", "stored"]
    louvre = world.client.get("/api/v1/sites/louvre").json()
    assert louvre["properties"]["materials"] == ["limestone"]
    assert louvre["properties"]["buffer_m"] == 150.0
    stored = shape(louvre["geometry"])
    assert stored.hausdorff_distance(LOUVRE) < 1e-6  # EPSG:3035 metres back to degrees
    pantheon = world.client.get("/api/v1/sites/pantheon").json()
    assert pantheon["properties"]["materials"] == ["brick", "concrete"]


def test_geopackage_with_two_layers_needs_the_layer_parameter(world, tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    _register(4326).to_file(path, layer="monuments")
    _register(4326).iloc[:1].to_file(path, layer="ruins")
    data = path.read_bytes()
    body = assert_problem(_upload(world, "two.gpkg", data, "application/geopackage+sqlite3"), 422)
    assert "several layers" in body["detail"] and "layer=" in body["detail"]
    assert body["detail"].startswith("two.gpkg") and "hm-upload" not in body["detail"]  # no server paths
    assert_problem(world.client.get("/api/v1/sites/louvre"), 404)  # nothing half-stored
    r = _upload(world, "two.gpkg", data, "application/geopackage+sqlite3", layer="ruins")
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1


def test_zipped_shapefile_upload_with_truncated_columns(world, tmp_path: Path) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    _register(2154).to_file(folder / "register.shp")  # Lambert-93, as French registers come
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in sorted(folder.iterdir()):
            archive.write(part, f"export/{part.name}")
        archive.writestr("__MACOSX/export/._register.shp", b"resource fork")
    r = _upload(world, "register.zip", buffer.getvalue(), "application/zip")
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2
    pantheon = world.client.get("/api/v1/sites/pantheon").json()
    stored = shape(pantheon["geometry"])
    assert stored.hausdorff_distance(PANTHEON) < 1e-6
    assert pantheon["properties"]["buffer_m"] == 80.0


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("broken.gpkg", b"SQLite format 3\x00 but truncated", "application/geopackage+sqlite3"),
        ("broken.zip", b"PK\x03\x04 not really a zip", "application/zip"),
    ],
)
def test_unreadable_binary_uploads_are_422_and_store_nothing(world, name, data, media_type) -> None:
    before = world.client.get("/api/v1/sites").json()["numberMatched"]
    body = assert_problem(_upload(world, name, data, media_type), 422)
    assert body["detail"]
    assert world.client.get("/api/v1/sites").json()["numberMatched"] == before
