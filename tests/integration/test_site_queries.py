"""Site search in the store: exact spatial filters (bbox, intersects), material and heritage-type filters,
and exact totals under paging. Runs on SQLite, and on PostgreSQL/PostGIS when HM_DATABASE_URL is set."""

from __future__ import annotations

import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from sites import Site
from tests.conftest import make_site

# An L covering [0, 2] x [0, 2] minus the square [1, 2] x [1, 2]: its bbox covers the notch, it does not.
L_SHAPE = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
NOTCH = (1.2, 1.2, 1.8, 1.8)
# Two parts far apart: the gap between them belongs to its bbox, not to it.
TWO_PARTS = MultiPolygon([box(10, 0, 10.5, 0.5), box(12, 0, 12.5, 0.5)])


def world() -> list[Site]:
    return [
        Site(id="ell", name="Ell", geometry=L_SHAPE, heritage_type="Fortress", materials=["limestone"]),
        Site(id="pair", name="Pair", geometry=TWO_PARTS, heritage_type="monument", materials=["brick"]),
        make_site("notch_site", 1.5, 1.5, half=0.1, heritage_type="Monument", materials=["marble", "brick"]),
        make_site("steel", 30.0, 45.0, materials=["Carbon Steel"], heritage_type="Église fortifiée"),
        make_site("steelish", 30.1, 45.0, materials=["carbonxsteel"], heritage_type="église"),
        *[
            make_site(f"grid_{i:02d}", 20.0 + i, 40.0, materials=["marble"] if i % 2 else ["timber"])
            for i in range(10)
        ],
    ]


def ids(result: tuple[list[Site], int]) -> list[str]:
    return [s.id for s in result[0]]


def brute_force(sites: list[Site], area) -> list[str]:
    return sorted(s.id for s in sites if s.geometry.intersects(area))


def test_bbox_keeps_only_sites_whose_geometry_meets_it(store):
    store.upsert_sites(world())
    sites, total = store.find_sites(bbox=NOTCH)
    assert [s.id for s in sites] == ["notch_site"] and total == 1  # the L's bbox covers the notch
    assert ids(store.find_sites(bbox=(10.6, 0.1, 11.9, 0.4))) == []  # between the two parts
    assert ids(store.find_sites(bbox=(12.4, 0.4, 13, 1))) == ["pair"]
    # a bbox touching the L's edge only intersects it
    assert ids(store.find_sites(bbox=(2.0, 0.2, 2.5, 0.8))) == ["ell"]
    assert ids(store.list_sites(bbox=NOTCH)) == ["notch_site"]


def test_intersects_matches_shapely_for_points_lines_and_polygons(store):
    sites = world()
    store.upsert_sites(sites)
    areas = [
        Point(1.5, 1.5),  # in the notch: only the small site there
        Point(0.5, 1.5),  # in the L's arm
        LineString([(1.5, -1), (1.5, 3)]),  # crosses the L's foot and the notch site
        LineString([(10.7, 0.2), (11.8, 0.2)]),  # in the gap of the pair
        box(19.5, 39.5, 23.5, 40.5),  # four grid sites
        Polygon([(25, 35), (35, 35), (30, 50)]),  # a triangle reaching both steel sites
    ]
    for area in areas:
        found = ids(store.find_sites(intersects=area))
        assert found == brute_force(sites, area), area.wkt
    assert ids(store.find_sites(intersects=Point(1.5, 1.5))) == ["notch_site"]
    assert ids(store.find_sites(intersects=LineString([(10.7, 0.2), (11.8, 0.2)]))) == []
    # with a bbox too, a site must meet both (each on its own)
    line = LineString([(1.5, -1), (1.5, 3)])
    assert ids(store.find_sites(bbox=(0, 1.2, 0.8, 2), intersects=line)) == ["ell"]
    assert ids(store.find_sites(bbox=(20, 39, 21, 41), intersects=line)) == []


def test_material_and_heritage_type_are_exact_and_case_insensitive(store):
    store.upsert_sites(world())
    assert ids(store.find_sites(material="carbon_steel")) == ["steel"]
    assert ids(store.find_sites(material=" Carbon Steel ")) == ["steel"]  # normalised as sites are
    assert ids(store.find_sites(material="steel")) == []  # a whole material, not a substring
    assert ids(store.find_sites(material="brick")) == ["notch_site", "pair"]
    assert ids(store.find_sites(heritage_type="MONUMENT")) == ["notch_site", "pair"]
    assert ids(store.find_sites(heritage_type="église FORTIFIÉE")) == ["steel"]
    assert ids(store.find_sites(heritage_type="ÉGLISE")) == ["steelish"]
    assert ids(store.find_sites(material="marble", heritage_type="monument")) == ["notch_site"]


def test_pages_partition_the_matches_and_totals_are_exact(store):
    sites = world()
    store.upsert_sites(sites)
    everything = store.find_sites(material="marble")
    expected = sorted(s.id for s in sites if "marble" in s.materials)
    assert ids(everything) == expected and everything[1] == len(expected) == 6
    pages, offset = [], 0
    while True:
        page, total = store.find_sites(material="marble", limit=4, offset=offset)
        assert total == len(expected)
        if not page:
            break
        pages += [s.id for s in page]
        offset += 4
    assert pages == expected
    # spatial filter plus paging: the second page holds what remains after the first
    area = box(19.5, 39.5, 29.5, 40.5)
    first, total = store.find_sites(intersects=area, material="timber", limit=3)
    rest, total_again = store.find_sites(intersects=area, material="timber", limit=3, offset=3)
    assert total == total_again == 5
    assert [s.id for s in first + rest] == [f"grid_{i:02d}" for i in range(0, 10, 2)]


def test_returned_sites_keep_their_geometry(store):
    store.upsert_sites(world())
    (pair,), _ = store.find_sites(intersects=box(12, 0, 13, 1))
    assert shapely.equals(pair.geometry, TWO_PARTS) and pair.materials == ["brick"]
    (ell,), _ = store.find_sites(bbox=(0, 0, 0.5, 0.5), country=None)
    assert shapely.equals(ell.geometry, L_SHAPE)
