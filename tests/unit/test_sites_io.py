"""Reading and writing site registries: every format, every validation rule, round trips, the demo set."""

from __future__ import annotations

import csv
import json
import math
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.affinity import affine_transform
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping

from sites import MATERIALS, Site, SiteParams, SiteValidationError
from sites.geometry import areas_m2
from sites.io import FeatureIssue, ImportReport, load_demo_sites, read_sites, write_sites

LON, LAT = 12.0, 45.0
#: Well-known points that must lie inside the demo polygons: (lon, lat).
LANDMARKS = {
    "acropolis_athens": (23.72664, 37.97153),  # Parthenon
    "pompeii": (14.4848, 40.7490),  # Forum
    "venice_historic_centre": (12.3397, 45.4345),  # St Mark's Basilica
    "alhambra_granada": (-3.5893, 37.1765),  # Palace of Charles V
    "mont_saint_michel": (-1.5115, 48.6361),  # abbey church
    "stonehenge": (-1.8262, 51.1789),  # stone circle
    "krakow_historic_centre": (19.9373, 50.0617),  # Main Market Square
    "hallstatt": (13.6486, 47.5617),  # Marktplatz
    "meteora": (21.6261, 39.7217),  # Great Meteoron
    "tower_of_london": (-0.0760, 51.5081),  # White Tower
    "dubrovnik_old_town": (18.1090, 42.6411),  # Stradun
    "bryggen_bergen": (5.3239, 60.3975),  # Bryggen wharf
    "evora_historic_centre": (-7.9075, 38.5727),  # Roman Temple
    "cologne_cathedral": (6.9583, 50.9413),  # cathedral
}
UK_BOX = (-8.7, 49.8, 1.8, 60.9)


def square(lon: float = LON, lat: float = LAT, size: float = 0.001) -> Polygon:
    """A square of `size` degrees (about 80 m × 110 m at 45° N for the default)."""
    return box(lon, lat, lon + size, lat + size)


def feature(geometry: Any, fid: Any = None, **props: Any) -> dict[str, Any]:
    """A GeoJSON Feature; `geometry` may be a shapely geometry, a GeoJSON dict or None."""
    geom = mapping(geometry) if hasattr(geometry, "geom_type") else geometry
    out: dict[str, Any] = {"type": "Feature", "properties": props, "geometry": geom}
    if fid is not None:
        out["id"] = fid
    return out


def write_geojson(path: Path, features: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}))
    return path


def good(fid: str = "good", lon: float = LON) -> dict[str, Any]:
    return feature(square(lon), id=fid, name="Good site")


def frame(crs: str | int = 4326) -> gpd.GeoDataFrame:
    """Two sites with every column type, in EPSG:4326 then moved to `crs`."""
    gdf = gpd.GeoDataFrame(
        {
            "ID": ["castle", "abbey"],
            "Name": ["Castle", "Abbey"],
            "buffer_m": [250.0, 0.0],
            "country": ["fr", "FR"],
            "heritage_type": ["monument", "religious site"],
            "materials": ["granite; Limestone", "sandstone,timber"],
            "unesco_id": [80, None],
            "thresholds": ['{"freeze_thaw_cycles": {"high": 50}}', None],
            "distance_to_sea_km": [0.5, None],
        },
        geometry=[square(-1.51, 48.63), square(-1.50, 48.64, 0.002)],
        crs=4326,
    )
    return gdf.to_crs(crs)


def write_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> list[Path]:
    """A Shapefile (names truncated to 10 characters, as GDAL does) and its side files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf.to_file(path)
    return sorted(path.parent.glob(f"{path.stem}.*"))


def assert_two_sites(report: ImportReport) -> None:
    """The two sites of `frame()`, whatever the format they went through."""
    assert report.ok, report.summary()
    castle, abbey = report.sites
    assert (castle.id, castle.name, abbey.id) == ("castle", "Castle", "abbey")
    assert castle.buffer_m == 250.0 and castle.country == "FR"
    assert castle.heritage_type == "monument"
    assert castle.materials == ["granite", "limestone"] and abbey.materials == ["sandstone", "timber"]
    assert castle.unesco_id == "80" and abbey.unesco_id is None
    assert castle.thresholds == {"freeze_thaw_cycles": {"high": 50.0}}
    assert castle.params.distance_to_sea_km == 0.5 and abbey.params.distance_to_sea_km is None
    assert shapely.hausdorff_distance(castle.geometry, square(-1.51, 48.63)) < 1e-7


# ------------------------------------------------------------------------------------------- formats


class TestFormats:
    def test_geojson_reads_top_level_id_and_all_properties(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "sites.geojson",
            [
                feature(
                    square(),
                    fid="venice",
                    ID="ignored",
                    Name="Venice",
                    BUFFER_M=800,
                    country="it",
                    heritage_type="historic centre",
                    materials=["Brick", "marble", "brick"],
                    unesco_id=394,
                    national_id="IT-1",
                    thresholds={"freeze_thaw_cycles": {"high": 50}},
                    rain_ph=4.8,
                    distance_to_sea_km=0,
                    unknown_column="dropped",
                )
            ],
        )
        report = read_sites(path)
        assert report.ok, report.summary()
        (site,) = report.sites
        assert site == Site(
            id="venice",
            name="Venice",
            geometry=square(),
            buffer_m=800,
            country="IT",
            heritage_type="historic centre",
            materials=["brick", "marble"],
            unesco_id="394",
            national_id="IT-1",
            thresholds={"freeze_thaw_cycles": {"high": 50}},
            params=SiteParams(rain_ph=4.8, distance_to_sea_km=0),
        )

    def test_geojson_string_properties_are_parsed(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.json",
            [feature(square(), id="a", name="A", materials="brick; timber", thresholds='{"x": {"high": 5}}')],
        )
        (site,) = read_sites(path).sites
        assert site.materials == ["brick", "timber"] and site.thresholds == {"x": {"high": 5.0}}

    def test_default_buffer_applies_only_where_buffer_m_is_absent(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.geojson",
            [feature(square(), id="a", name="A"), feature(square(13), id="b", name="B", buffer_m=10)],
        )
        a, b = read_sites(path, default_buffer_m=300).sites
        assert (a.buffer_m, b.buffer_m) == (300, 10)

    def test_geojson_legacy_crs_member_is_honoured(self, tmp_path: Path) -> None:
        moved = gpd.GeoSeries([square()], crs=4326).to_crs(3035).iloc[0]
        crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3035"}}
        path = write_geojson(tmp_path / "s.geojson", [feature(moved, id="a", name="A")], crs=crs)
        (site,) = read_sites(path).sites
        assert shapely.hausdorff_distance(site.geometry, square()) < 1e-7

    def test_geopackage_in_epsg3035_is_reprojected(self, tmp_path: Path) -> None:
        path = tmp_path / "sites.gpkg"
        gdf = frame(3035)
        assert gdf.geometry.iloc[0].bounds[0] > 1e6  # really metres
        gdf.to_file(path, layer="sites")
        assert_two_sites(read_sites(path))

    def test_geopackage_with_several_layers_needs_a_layer(self, tmp_path: Path) -> None:
        path = tmp_path / "sites.gpkg"
        frame().to_file(path, layer="first")
        frame().iloc[:1].to_file(path, layer="second")
        with pytest.raises(SiteValidationError, match="several layers"):
            read_sites(path)
        assert [s.id for s in read_sites(path, layer="second").sites] == ["castle"]
        with pytest.raises(SiteValidationError, match="no layer 'third'"):
            read_sites(path, layer="third")

    def test_shapefile_with_truncated_column_names(self, tmp_path: Path) -> None:
        write_shapefile(frame(2154), tmp_path / "sites.shp")
        assert_two_sites(read_sites(tmp_path / "sites.shp"))

    def test_zipped_shapefile(self, tmp_path: Path) -> None:
        files = write_shapefile(frame(), tmp_path / "sites.shp")
        with zipfile.ZipFile(tmp_path / "sites.zip", "w") as archive:
            for f in files:
                archive.write(f, f"registry/{f.name}")
            archive.writestr("__MACOSX/registry/._sites.shp", b"junk")
        assert_two_sites(read_sites(tmp_path / "sites.zip"))

    def test_zipped_geojson_and_geopackage(self, tmp_path: Path) -> None:
        frame().to_file(tmp_path / "inner.gpkg")
        geojson = write_geojson(tmp_path / "inner.geojson", [good()])
        with zipfile.ZipFile(tmp_path / "gpkg.zip", "w") as archive:
            archive.write(tmp_path / "inner.gpkg", "inner.gpkg")
        with zipfile.ZipFile(tmp_path / "json.zip", "w") as archive:
            archive.write(geojson, "inner.geojson")
        assert_two_sites(read_sites(tmp_path / "gpkg.zip"))
        assert [s.id for s in read_sites(tmp_path / "json.zip").sites] == ["good"]

    def test_zip_with_two_datasets_needs_a_layer(self, tmp_path: Path) -> None:
        with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
            archive.writestr("a.geojson", json.dumps({"type": "FeatureCollection", "features": [good("a")]}))
            archive.writestr("b.geojson", json.dumps({"type": "FeatureCollection", "features": [good("b")]}))
        with pytest.raises(SiteValidationError, match="expected one"):
            read_sites(tmp_path / "two.zip")
        assert [s.id for s in read_sites(tmp_path / "two.zip", layer="b").sites] == ["b"]

    def test_csv_lat_lon_points_become_circles_of_buffer_m(self, tmp_path: Path) -> None:
        path = tmp_path / "sites.csv"
        path.write_text(
            "ID,Name,lat,lon,buffer_m,materials\n"
            "chapel,Chapel,45.5,12.25,100,limestone;brick\n"
            "tower,Tower,46.0,11.0,,\n"
            "well,Well,46.0,11.0,0,\n"
        )
        report = read_sites(path, default_buffer_m=50)
        chapel, tower = report.sites
        assert chapel.buffer_m == 100 and tower.buffer_m == 50
        assert chapel.materials == ["limestone", "brick"]
        assert chapel.geometry.contains(Point(12.25, 45.5))
        assert areas_m2([chapel.geometry])[0] == pytest.approx(math.pi * 100**2, rel=0.01)
        assert areas_m2([tower.geometry])[0] == pytest.approx(math.pi * 50**2, rel=0.01)
        (error,) = report.errors
        assert (error.index, error.site_id) == (3, "well") and "buffer_m > 0" in error.message

    def test_csv_wkt(self, tmp_path: Path) -> None:
        path = tmp_path / "sites.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "name", "wkt", "thresholds"])
            writer.writerow(["a", "A", square().wkt, '{"x": {"high": 1}}'])
            writer.writerow(["b", "B", "POINT (12 45)", ""])
            writer.writerow(["c", "C", "POLYGON ((0 0, 1", ""])
        report = read_sites(path)
        assert [s.id for s in report.sites] == ["a"]
        assert report.sites[0].geometry.equals(square()) and report.sites[0].thresholds == {"x": {"high": 1}}
        assert [(e.index, e.site_id) for e in report.errors] == [(2, "b"), (3, "c")]
        assert "Point" in report.errors[0].message and "unreadable WKT" in report.errors[1].message

    def test_id_and_name_fields_can_be_renamed(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.geojson", [feature(square(), entity=463237, title="Tower", name="old name")]
        )
        (site,) = read_sites(path, id_field="Entity", name_field="TITLE").sites
        assert (site.id, site.name) == ("463237", "Tower")


class TestUnreadableFiles:
    def test_unknown_extension(self, tmp_path: Path) -> None:
        (tmp_path / "sites.kml").write_text("<kml/>")
        with pytest.raises(SiteValidationError, match=r"unknown file type '\.kml'"):
            read_sites(tmp_path / "sites.kml")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(SiteValidationError, match="no such file"):
            read_sites(tmp_path / "absent.geojson")

    @pytest.mark.parametrize(
        ("name", "content", "reason"),
        [
            ("bad.geojson", b"{not json", "not valid JSON"),
            ("list.geojson", b"[1, 2]", "FeatureCollection"),
            ("bad.gpkg", b"this is no database", "cannot read"),
            ("bad.zip", b"PK but not a zip", "cannot read"),
        ],
    )
    def test_unreadable_content(self, tmp_path: Path, name: str, content: bytes, reason: str) -> None:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SiteValidationError, match=reason):
            read_sites(tmp_path / name)

    @pytest.mark.parametrize(
        ("header", "missing"),
        [("id,name,x,y", "wkt \\(or lat and lon\\)"), ("id,wkt", "name"), ("name,lat,lon", "id")],
    )
    def test_csv_missing_columns(self, tmp_path: Path, header: str, missing: str) -> None:
        (tmp_path / "s.csv").write_text(header + "\n")
        with pytest.raises(SiteValidationError, match=f"missing required column\\(s\\): {missing}"):
            read_sites(tmp_path / "s.csv")

    def test_file_without_crs_in_metres_is_rejected(self, tmp_path: Path) -> None:
        files = write_shapefile(frame(3035), tmp_path / "sites.shp")
        next(f for f in files if f.suffix == ".prj").unlink()
        with pytest.raises(SiteValidationError, match="no CRS"):
            read_sites(tmp_path / "sites.shp")

    def test_file_without_crs_in_lon_lat_is_accepted(self, tmp_path: Path) -> None:
        files = write_shapefile(frame(), tmp_path / "sites.shp")
        next(f for f in files if f.suffix == ".prj").unlink()
        assert_two_sites(read_sites(tmp_path / "sites.shp"))


# ---------------------------------------------------------------------------------------- validation

BOW_TIE = Polygon([(LON, LAT), (LON + 0.001, LAT + 0.001), (LON + 0.001, LAT), (LON, LAT + 0.001)])
#: A ~80 m square whose ring touches itself at the top (an inverted hole): same area once repaired.
SELF_TOUCHING = affine_transform(
    Polygon([(0, 0), (10, 0), (10, 10), (5, 10), (7, 5), (3, 5), (5, 10), (0, 10)]),
    [1e-4, 0, 0, 1e-4, LON, LAT],
)

BAD_FEATURES = {
    "null geometry": (feature(None, id="bad", name="Bad"), "no geometry"),
    "empty geometry": (feature({"type": "Polygon", "coordinates": []}, id="bad", name="Bad"), "empty"),
    "lon out of range": (feature(square(181.0), id="bad", name="Bad"), "out of range"),
    "lat out of range": (feature(square(lat=90.5), id="bad", name="Bad"), "out of range"),
    "point": (feature(Point(LON, LAT), id="bad", name="Bad"), "Point"),
    "line": (feature(LineString([(LON, LAT), (LON + 1, LAT)]), id="bad", name="Bad"), "LineString"),
    "collection with a point": (
        feature(shapely.GeometryCollection([square(13), Point(13, 45)]), id="bad", name="Bad"),
        "GeometryCollection",
    ),
    "bow-tie": (feature(BOW_TIE, id="bad", name="Bad"), "changes its area"),
    "too small": (feature(square(size=1e-6), id="bad", name="Bad"), "area"),
    "too large": (feature(square(0, 40, size=3.0), id="bad", name="Bad"), "20,000 km²"),
    "invalid id": (feature(square(13), id="Bad Id", name="Bad"), "site id 'Bad Id' must match"),
    "negative buffer": (feature(square(13), id="bad", name="Bad", buffer_m=-5), "buffer_m"),
    "bad rain pH": (feature(square(13), id="bad", name="Bad", rain_ph=12), "params.rain_ph"),
    "thresholds not JSON": (feature(square(13), id="bad", name="Bad", thresholds="{oops"), "not valid JSON"),
    "thresholds wrong shape": (feature(square(13), id="bad", name="Bad", thresholds={"x": 3}), "thresholds"),
}


class TestValidation:
    @pytest.mark.parametrize("case", list(BAD_FEATURES))
    def test_bad_feature_is_reported_and_good_ones_kept(self, tmp_path: Path, case: str) -> None:
        bad, reason = BAD_FEATURES[case]
        path = write_geojson(tmp_path / "s.geojson", [good("first"), bad, good("third", lon=14.0)])
        report = read_sites(path)
        assert [s.id for s in report.sites] == ["first", "third"]
        assert not report.ok
        (issue,) = report.errors
        assert issue.index == 2 and issue.name == "Bad"
        assert issue.site_id == bad["properties"]["id"]
        assert reason in issue.message
        assert "\n" not in issue.message

    def test_missing_id_and_name(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.geojson",
            [feature(square(), name="No id"), feature(square(13), id="noname", name="  "), good()],
        )
        report = read_sites(path)
        assert [s.id for s in report.sites] == ["good"]
        assert report.errors == [
            FeatureIssue(1, None, "No id", "missing id"),
            FeatureIssue(2, "noname", None, "missing name"),
        ]

    def test_duplicate_ids_after_the_first_are_errors(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.geojson",
            [good("twin"), good("other", lon=13), good("twin", lon=14), good("twin", lon=15)],
        )
        report = read_sites(path)
        assert [s.id for s in report.sites] == ["twin", "other"]
        assert report.sites[0].geometry.equals(square())
        assert [(e.index, e.site_id) for e in report.errors] == [(3, "twin"), (4, "twin")]
        assert all("duplicate id 'twin' (first used by feature 1)" in e.message for e in report.errors)

    def test_several_problems_of_one_feature_are_all_reported(self, tmp_path: Path) -> None:
        path = write_geojson(tmp_path / "s.geojson", [feature(None, name="Nameless")])
        messages = [e.message for e in read_sites(path).errors]
        assert messages == ["missing id", "no geometry (null)"]

    def test_self_touching_ring_is_repaired_with_a_warning(self, tmp_path: Path) -> None:
        assert not SELF_TOUCHING.is_valid
        path = write_geojson(tmp_path / "s.geojson", [feature(SELF_TOUCHING, id="notch", name="Notch")])
        report = read_sites(path)
        assert report.ok
        (site,) = report.sites
        assert site.geometry.is_valid
        assert site.geometry.area == pytest.approx(SELF_TOUCHING.area, rel=1e-9)
        (warning,) = report.warnings
        assert (warning.index, warning.site_id) == (1, "notch")
        assert "repaired with make_valid" in warning.message

    def test_bow_tie_is_rejected_because_its_area_changes(self, tmp_path: Path) -> None:
        path = write_geojson(tmp_path / "s.geojson", [feature(BOW_TIE, id="bow", name="Bow")])
        report = read_sites(path)
        assert report.sites == [] and report.warnings == []
        assert "Self-intersection" in report.errors[0].message

    def test_collection_of_polygons_with_empty_parts_is_kept(self, tmp_path: Path) -> None:
        geom = shapely.GeometryCollection([square(), square(13), Point()])
        path = write_geojson(tmp_path / "s.geojson", [feature(geom, id="gc", name="GC")])
        (site,) = read_sites(path).sites
        assert site.geometry.equals(MultiPolygon([square(), square(13)]))

    def test_out_of_range_in_a_geopackage_with_crs(self, tmp_path: Path) -> None:
        gdf = gpd.GeoDataFrame(
            {"id": ["a", "b"], "name": ["A", "B"]}, geometry=[square(), square(200)], crs=4326
        )
        gdf.to_file(tmp_path / "s.gpkg")
        report = read_sites(tmp_path / "s.gpkg")
        assert [s.id for s in report.sites] == ["a"]
        assert report.errors[0].index == 2 and "out of range" in report.errors[0].message

    def test_summary_names_every_issue(self, tmp_path: Path) -> None:
        path = write_geojson(
            tmp_path / "s.geojson",
            [good(), feature(None, id="gone", name="Gone"), feature(SELF_TOUCHING, id="fixed", name="F")],
        )
        text = read_sites(path).summary()
        lines = text.splitlines()
        assert lines[0].endswith("2 site(s) read, 1 error(s), 1 warning(s)")
        assert lines[1] == "  error: feature 2, id 'gone', name 'Gone': no geometry (null)"
        assert lines[2].startswith("  warning: feature 3, id 'fixed', name 'F': invalid geometry")


# ---------------------------------------------------------------------------------------- round trip


def sample_sites() -> list[Site]:
    with_hole = Polygon(square(size=0.01).exterior.coords, [square(LON + 0.004, LAT + 0.004, 0.001).exterior])
    return [
        Site(
            id="full",
            name='Ça, with "quotes", commas; and ünïcode',
            geometry=with_hole,
            buffer_m=750.5,
            country="IT",
            heritage_type="historic centre",
            materials=["brick", "marble", "opus_signinum"],
            unesco_id="394",
            national_id="IT/17",
            thresholds={"freeze_thaw_cycles": {"high": 50, "severe": 80.5}},
            params=SiteParams(rain_ph=4.9, distance_to_sea_km=1.25, latitude_band="north"),
        ),
        Site(id="bare.1", name="Bare", geometry=MultiPolygon([square(1 / 3, 1 / 7), square(0.5, 0.5)])),
    ]


class TestWrite:
    @pytest.mark.parametrize(("fmt", "suffix"), [("geojson", ".geojson"), ("csv", ".csv")])
    def test_round_trip(self, tmp_path: Path, fmt: str, suffix: str) -> None:
        sites = sample_sites()
        path = tmp_path / f"out{suffix}"
        path.write_bytes(write_sites(sites, fmt))
        report = read_sites(path)
        assert report.ok and not report.warnings
        assert report.sites == sites

    def test_geojson_feature_id_is_the_site_id(self) -> None:
        doc = json.loads(write_sites(sample_sites()))
        assert doc["type"] == "FeatureCollection"
        assert [f["id"] for f in doc["features"]] == ["full", "bare.1"]
        assert doc["features"][0]["properties"]["materials"] == ["brick", "marble", "opus_signinum"]

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="unknown format"):
            write_sites(sample_sites(), "kml")

    @settings(max_examples=200, deadline=None)
    @given(
        lon=st.floats(-179.0, 179.0, allow_nan=False),
        lat=st.floats(-89.0, 89.0, allow_nan=False),
        size=st.floats(1e-9, 0.5),
    )
    def test_csv_round_trip_keeps_every_digit(self, lon: float, lat: float, size: float) -> None:
        site = Site(id="s", name="S", geometry=box(lon, lat, lon + size, lat + size))
        rows = list(csv.DictReader(write_sites([site], "csv").decode().splitlines()))
        assert shapely.from_wkt(rows[0]["wkt"]).equals_exact(site.geometry, 0)


# -------------------------------------------------------------------------------------------- demo


class TestDemo:
    def test_demo_sites(self) -> None:
        sites = load_demo_sites()
        assert len(sites) >= 12
        assert len(set(sites.ids)) == len(sites)
        assert set(LANDMARKS) == set(sites.ids)
        areas = areas_m2(sites.geometries())
        for site, area in zip(sites, areas, strict=True):
            assert site.geometry.is_valid, site.id
            assert 0.01e6 <= area <= 50e6, (site.id, area)
            assert site.geometry.contains(Point(LANDMARKS[site.id])), site.id
            assert 5 <= len(shapely.get_coordinates(site.geometry)) - 1 <= 20, site.id
            assert site.materials and set(site.materials) <= set(MATERIALS), site.id
            assert site.unesco_id and site.unesco_id.isdigit(), site.id
            assert site.country and len(site.country) == 2, site.id
            assert 500 <= site.buffer_m <= 2000, site.id
            assert site.params.distance_to_sea_km is not None, site.id

    def test_demo_unesco_references(self) -> None:
        ids = {s.id: s.unesco_id for s in load_demo_sites()}
        assert ids["acropolis_athens"] == "404" and ids["venice_historic_centre"] == "394"
        assert ids["stonehenge"] == "373" and ids["tower_of_london"] == "488"


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_uk_world_heritage_sites(shared_data: Path) -> None:
    """Digital Land's UK World Heritage Site polygons: one Feature per file, no `id`, the id is `entity`."""
    folder = shared_data / "sites" / "uk_whs_digital_land"
    names = dict(line.split("\t")[:2] for line in (folder / "index.tsv").read_text().splitlines() if line)
    files = sorted(folder.glob("*.geojson"))
    assert files and {f.stem for f in files} == set(names)
    west, south, east, north = UK_BOX
    for path in files:
        report = read_sites(path, id_field="entity")
        assert report.ok, report.summary()
        (site,) = report.sites
        assert site.name == names[path.stem]
        assert site.geometry.is_valid and not site.geometry.is_empty
        xmin, ymin, xmax, ymax = site.geometry.bounds
        assert west <= xmin and xmax <= east and south <= ymin and ymax <= north, path.name
