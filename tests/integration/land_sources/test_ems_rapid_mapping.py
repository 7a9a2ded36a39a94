"""CEMS Rapid Mapping: the remote client against a fake serving the real API JSON, and the EMSR332 Venice
flood delineations read in place."""

from __future__ import annotations

import copy
import json
import time
from datetime import date

import numpy as np
import pytest
from shapely import wkt

from monitor.sources import SourceUnavailableError
from monitor.sources.base import SourceRequestError
from sites import SiteSet
from tests.conftest import make_site
from tests.integration.land_sources.conftest import make_settings
from tests.integration.land_sources.fakes import reply_status

API = "cems_ems/rapid_mapping_api"
FAR = make_site("bath", -2.3590, 51.3811, half=0.003)


def ems(settings, mode="remote"):
    from monitor.sources import ems_rapid_mapping

    return ems_rapid_mapping.build(settings, mode)


def _generated_detail(record: dict, half: float = 0.05) -> dict:
    """A detail answer of the real shape for a list record that has no recorded detail."""
    point = wkt.loads(record["centroid"])
    x, y = point.x, point.y
    ring = [(x - half, y - half), (x + half, y - half), (x + half, y + half), (x - half, y + half)]
    extent = "POLYGON ((" + ", ".join(f"{a} {b}" for a, b in [*ring, ring[0]]) + "))"
    return {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "code": record["code"],
                "name": record["name"],
                "category": record["category"] if isinstance(record["category"], str) else "Wildfire",
                "eventTime": record.get("eventTime"),
                "activationTime": record["activationTime"],
                "closed": record["closed"],
                "countries": [{"name": c} for c in record.get("countries", [])],
                "aois": [
                    {
                        "name": "AOI",
                        "number": 1,
                        "extent": extent,
                        "activationCode": record["code"],
                        "products": [],
                    }
                ],
                "centroid": record["centroid"],
                "extent": extent,
            }
        ],
    }


@pytest.fixture
def served(fake, shared_data):
    """The fake serving the real list page first, then generated pages with the real details' activations."""
    first = json.loads((shared_data / API / "rapidmapping-activations-list.json").read_text())
    d842 = json.loads((shared_data / API / "EMSR842-wildfire-detail.json").read_text())
    d871 = json.loads((shared_data / API / "EMSR871-flood-detail.json").read_text())
    extra = [
        {
            "code": "EMSR871",
            "countries": ["Italy"],
            "eventTime": "2026-03-31T15:00:00",
            "name": d871["results"][0]["name"],
            "centroid": d871["results"][0]["centroid"],
            "activationTime": "2026-04-01T15:16:00",
            "category": "Flood",
            "lastUpdate": "2026-04-20T10:00:00.000000",
            "closed": True,
            "gdacsId": None,
            "n_aois": 6,
            "n_products": 14,
        },
        {
            "code": "EMSR842",
            "countries": ["Spain"],
            "eventTime": "2025-09-08T19:00:00",
            "name": d842["results"][0]["name"],
            "centroid": d842["results"][0]["centroid"],
            "activationTime": "2025-09-19T09:53:00",
            "category": "Wildfire",
            "lastUpdate": "2025-10-02T10:00:00.000000",
            "closed": True,
            "gdacsId": None,
            "n_aois": 2,
            "n_products": 2,
        },
    ]
    fake.ems.first_page = first
    fake.ems.records = first["results"] + extra
    fake.ems.details = {"EMSR871": d871, "EMSR842": d842}
    for record in first["results"]:
        fake.ems.details[record["code"]] = _generated_detail(record)
    return fake


def _inside_871(aoi: int = 1) -> tuple[float, float]:
    from tests.conftest import _shared_data_dir

    detail = json.loads((_shared_data_dir() / API / "EMSR871-flood-detail.json").read_text())
    p = wkt.loads(detail["results"][0]["aois"][aoi - 1]["extent"]).representative_point()
    return p.x, p.y


def test_paging_follows_next_on_our_base_and_counts_active_days(served, ems_settings, tmp_path):
    settings = make_settings(tmp_path, **{**ems_settings.model_dump(), "ems_page_size": 3})
    molise = make_site("molise_site", *_inside_871(), half=0.002, buffer_m=200)
    cube = ems(settings).fetch(SiteSet([molise, FAR]), date(2026, 3, 25), date(2026, 4, 30))
    assert served.ems.violations == []
    # the real first page's `next` names the real host; only its query was used, on the fake
    assert served.ems.list_requests == [{"limit": "3", "offset": "0"}, {"limit": "3", "offset": "3"}]
    # EMSR888/887/886 were activated after the period, EMSR842 closed long before: only EMSR871's detail
    assert served.ems.detail_requests == ["EMSR871"]
    assert cube.sizes["time"] == 37 and list(cube.site.values) == ["molise_site", "bath"]
    active = cube.ems_active.sel(site="molise_site").to_series()
    assert active[:"2026-03-31"].eq(0).all()
    assert active["2026-04-01":"2026-04-20"].eq(1).all()  # activation day .. last update (closed)
    assert active["2026-04-21":].eq(0).all()
    assert (cube.ems_active.sel(site="bath") == 0).all()
    assert cube.ems_active.attrs["units"] == "1"
    acts = json.loads(cube.attrs["activations"])
    assert [a["code"] for a in acts["molise_site"]] == ["EMSR871"] and "bath" not in acts
    assert "EMSR871" in cube.attrs["attribution"]
    assert cube.attrs["synthetic"] == "false" and bool(cube.covered.all())


def test_open_activation_is_active_to_the_end(served, ems_settings):
    x, y = wkt.loads(served.ems.records[0]["centroid"]).coords[0]  # EMSR888, open, activated 2026-07-03
    site = make_site("gavarres", x, y)
    cube = ems(ems_settings).fetch(SiteSet([site]), date(2026, 7, 1), date(2026, 7, 10))
    series = cube.ems_active.sel(site="gavarres").to_series()
    assert series[:"2026-07-02"].eq(0).all() and series["2026-07-03":].eq(1).all()


def test_details_are_fetched_again_only_when_the_signature_changes(served, ems_settings):
    sites = SiteSet([make_site("molise_site", *_inside_871())])
    period = (date(2026, 3, 25), date(2026, 4, 30))
    ems(ems_settings).fetch(sites, *period)
    assert served.ems.detail_requests == ["EMSR871"]
    again = ems(ems_settings).fetch(sites, *period)
    assert served.ems.detail_requests == ["EMSR871"]  # unchanged (lastUpdate, n_products, n_aois)
    assert json.loads(again.attrs["request"])["details_unchanged"] == ["EMSR871"]
    record = next(r for r in served.ems.records if r["code"] == "EMSR871")
    record["n_products"] += 1
    ems(ems_settings).fetch(sites, *period)
    assert served.ems.detail_requests == ["EMSR871", "EMSR871"]
    state = json.loads((ems_settings.data_dir / "cache/ems_rapid_mapping/state.json").read_text())
    assert state["activations"]["EMSR871"]["signature"][1] == record["n_products"]


def test_429_with_retry_after_then_success(served, ems_settings):
    served.ems.plan = [lambda: (429, {"detail": "Request was throttled."}, {"Retry-After": "1"})]
    t0 = time.monotonic()
    cube = ems(ems_settings).fetch(SiteSet([FAR]), date(2026, 7, 1), date(2026, 7, 2))
    assert time.monotonic() - t0 >= 0.9
    assert cube.sizes["time"] == 2
    assert served.ems.list_requests[0] == served.ems.list_requests[1]


def test_500_forever_is_unavailable_within_seconds(served, ems_settings):
    served.ems.plan = [lambda: reply_status(500)({})] * 10
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as info:
        ems(ems_settings).fetch(SiteSet([FAR]), date(2026, 7, 1), date(2026, 7, 2))
    assert time.monotonic() - t0 < 5 and len(served.ems.list_requests) == 3
    assert info.value.__cause__ is not None


def test_long_retry_after_fails_fast(served, ems_settings):
    served.ems.plan = [lambda: (503, {}, {"Retry-After": "86400"})]
    with pytest.raises(SourceUnavailableError, match="86400"):
        ems(ems_settings).fetch(SiteSet([FAR]), date(2026, 7, 1), date(2026, 7, 2))


def test_404_is_a_request_error(served, ems_settings, tmp_path):
    settings = make_settings(tmp_path, **{**ems_settings.model_dump(), "ems_url": served.url + "/nowhere"})
    with pytest.raises(SourceRequestError, match="404"):
        ems(settings).fetch(SiteSet([FAR]), date(2026, 7, 1), date(2026, 7, 2))


def test_check_remote(served, ems_settings):
    from monitor.sources import ems_rapid_mapping

    result = ems_rapid_mapping.check(ems_settings)
    assert result["reachable"] is True and result["mode"] == "remote"


# --- local: EMSR332 delineations read in place ---------------------------------------------------------

# The Venezia AOI of EMSR332 (12.19–12.75 E, 45.40–45.83 N) covers the historic centre, but its observed
# flood polygons lie 45.63–45.83 N along the Piave: Piazza San Marco (12.339 E, 45.434 N) is ~12 km from
# the nearest one. A site on the Piave flood plain is inside them.
SAN_MARCO = make_site("piazza_san_marco", 12.3387, 45.4341, half=0.002, buffer_m=250)
PIAVE = make_site("piave_floodplain", 12.5055, 45.6637, half=0.002, buffer_m=100)
PERIOD_2018 = (date(2018, 10, 1), date(2018, 11, 30))


def test_emsr332_flood_delineations_give_flooded_fraction(shared_data, tmp_path):
    settings = make_settings(
        tmp_path,
        ems_rapid_mapping_mode="local",
        ems_rapid_mapping_path=shared_data / "cems_ems/EMSR332/venezia",
    )
    cube = ems(settings, "local").fetch(SiteSet([PIAVE, SAN_MARCO, FAR]), *PERIOD_2018)
    # dated by the post-event Sentinel-1 images of each polygon's dmg_src_id in the `_source.dbf` tables
    assert [str(t)[:10] for t in cube.time.values] == ["2018-11-02", "2018-11-03"]
    frac = cube.ems_flooded_fraction
    assert frac.attrs["units"] == "1"
    assert float(frac.sel(site="piave_floodplain", time="2018-11-03")) > 0.1
    assert float(frac.sel(site="piazza_san_marco").max()) == 0.0
    assert float(frac.sel(site="bath").max()) == 0.0
    assert ((frac >= 0) & (frac <= 1)).all()
    assert cube.ems_active.isnull().all()  # no activation detail saved here: unknown, not zero
    assert json.loads(cube.attrs["undated_layers"]) == []


def test_merged_layer_without_source_table_is_listed_as_undated(shared_data, tmp_path):
    settings = make_settings(
        tmp_path, ems_rapid_mapping_mode="local", ems_rapid_mapping_path=shared_data / "cems_ems/EMSR332"
    )
    cube = ems(settings, "local").fetch(SiteSet([PIAVE]), *PERIOD_2018)
    assert "observed_event_merged.shp" in json.loads(cube.attrs["undated_layers"])
    assert float(cube.ems_flooded_fraction.sel(site="piave_floodplain").max()) > 0.1


def test_outside_the_period_no_event_days(shared_data, tmp_path):
    settings = make_settings(
        tmp_path,
        ems_rapid_mapping_mode="local",
        ems_rapid_mapping_path=shared_data / "cems_ems/EMSR332/venezia",
    )
    cube = ems(settings, "local").fetch(SiteSet([PIAVE]), date(2019, 1, 1), date(2019, 1, 31))
    assert cube.sizes["time"] == 0


def test_local_details_give_active_days(shared_data, tmp_path):
    folder = tmp_path / "ems"
    folder.mkdir()
    detail = json.loads((shared_data / API / "EMSR871-flood-detail.json").read_text())
    (folder / "EMSR871.json").write_text(json.dumps(detail))
    open_one = copy.deepcopy(detail)
    open_one["results"][0].update(code="EMSR999", closed=False, activationTime="2026-04-10T08:00:00")
    (folder / "EMSR999.json").write_text(json.dumps(open_one))
    settings = make_settings(tmp_path, ems_rapid_mapping_mode="local", ems_rapid_mapping_path=folder)
    site = make_site("molise_site", *_inside_871())
    cube = ems(settings, "local").fetch(SiteSet([site, FAR]), date(2026, 3, 30), date(2026, 4, 30))
    series = cube.ems_active.sel(site="molise_site").to_series()
    # EMSR871 closed: active to its last product delivery (2026-04-05); EMSR999 open from 04-10
    assert series["2026-04-01":"2026-04-05"].eq(1).all()
    assert series["2026-04-06":"2026-04-09"].eq(0).all()
    assert series["2026-04-10":].eq(1).all()
    assert np.all(cube.ems_flooded_fraction.isnull())


# --- remote delineation products: a DEL product zip built from the real EMSR332 Venezia files ----------


def _emsr332_zip(shared_data) -> bytes:
    import io
    import zipfile

    folder = shared_data / "cems_ems/EMSR332/venezia"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.glob("EMSR332_09VENEZIA_DEL_MONIT01_v1_*")):
            zf.write(path, f"EMSR332_09VENEZIA_DEL_MONIT01_v1/{path.name}")
    return buf.getvalue()


def test_remote_delineation_products_give_flooded_fraction(fake, ems_settings, shared_data, tmp_path):
    import geopandas as gpd

    aoi = gpd.read_file(
        shared_data / "cems_ems/EMSR332/venezia/EMSR332_09VENEZIA_DEL_MONIT01_v1_area_of_interest_a.shp"
    )
    extent = aoi.geometry.iloc[0].wkt
    name = "EMSR332_AOI09_DEL_MONIT01_v1.zip"
    fake.ems.files[name] = _emsr332_zip(shared_data)
    record = {
        "code": "EMSR332",
        "countries": ["Italy"],
        "eventTime": "2018-10-28T00:00:00",
        "name": "Flood in Veneto",
        "centroid": "POINT (12.47 45.62)",
        "activationTime": "2018-10-30T10:00:00",
        "category": "Flood",
        "lastUpdate": "2018-11-20T10:00:00",
        "closed": True,
        "gdacsId": None,
        "n_aois": 1,
        "n_products": 1,
    }
    product = {
        "type": "DEL",
        "monitoringNumber": 1,
        "images": [{"acquisitionTime": "2018-11-03T17:06:00"}],
        "version": {"number": 1, "deliveryTime": "2018-11-04T10:00:00", "statusCode": "F"},
        "downloadPath": f"{fake.url}/backend/products/{name}",
        "layers": [],
    }
    wildfire_like = {**product, "type": "GRA"}  # only DEL products are read
    detail = {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "code": "EMSR332",
                "name": "Flood in Veneto",
                "category": "Flood",
                "eventTime": record["eventTime"],
                "activationTime": record["activationTime"],
                "closed": True,
                "countries": [{"name": "Italy"}],
                "aois": [
                    {"name": "Venezia", "number": 9, "extent": extent, "products": [product, wildfire_like]}
                ],
                "centroid": record["centroid"],
                "extent": extent,
            }
        ],
    }
    fake.ems.records = [record]
    fake.ems.details = {"EMSR332": detail}
    settings = make_settings(tmp_path, **{**ems_settings.model_dump(), "ems_download_delineations": True})
    sites = SiteSet([PIAVE, SAN_MARCO, FAR])
    cube = ems(settings).fetch(sites, *PERIOD_2018)
    assert fake.ems.downloads == [name]
    frac = cube.ems_flooded_fraction
    assert float(frac.sel(site="piave_floodplain", time="2018-11-03")) > 0.1
    assert float(frac.sel(site="piazza_san_marco").max()) == 0.0
    assert np.isnan(frac.sel(site="piave_floodplain", time="2018-10-15"))  # not an event day
    active = cube.ems_active.sel(site="piazza_san_marco").to_series()  # San Marco is inside the AOI
    assert active["2018-10-30":"2018-11-20"].eq(1).all() and active[:"2018-10-29"].eq(0).all()
    assert float(cube.ems_active.sel(site="bath").max()) == 0
    assert json.loads(cube.attrs["request"])["delineation_products"] == [name]
    # the product zip is cached: a second run downloads nothing
    ems(settings).fetch(sites, *PERIOD_2018)
    assert fake.ems.downloads == [name]
