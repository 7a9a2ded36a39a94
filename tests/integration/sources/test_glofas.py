"""GloFAS discharge: generated EWDS files (no real GloFAS file exists in shared/data) with an upstream-area
map and return-period thresholds, and the live-schema adaptation against the fake EWDS."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from monitor.settings import Settings
from monitor.sources import glofas
from sites import Site, SiteSet
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings
from tests.integration.sources.fake_cds import GLOFAS_NEW_SCHEMA

AREA = [45.5, 9.5, 45.0, 10.5]
RIVER_LAT = 45.225
DAYS = [date(2024, 6, d) for d in range(1, 11)]


def sites() -> SiteSet:
    return SiteSet(
        [
            # a hillside site 4 km north of the river; the river's pixels within 8 km span 9.925–10.075°E,
            # and a reservoir-like cell of huge discharge but tiny upstream area lies 3 km north of it
            Site(id="bridge", name="Bridge", geometry=box(9.98, 45.26, 10.02, 45.30)),
            Site(id="far", name="Far away", geometry=box(20.0, 45.0, 20.01, 45.01)),
        ]
    )


def write_local(tmp_path, with_lead: bool = True):
    folder = tmp_path / "glofas"
    folder.mkdir(exist_ok=True)
    products.glofas_dataset(DAYS, AREA, RIVER_LAT, with_lead=with_lead).to_netcdf(folder / "dis24.nc")
    uparea, thresholds = products.glofas_static(AREA, RIVER_LAT)
    uparea.to_netcdf(tmp_path / "uparea_glofas_v4_0.nc")
    rl = tmp_path / "thresholds"
    rl.mkdir(exist_ok=True)
    for rp, ds in thresholds.items():
        ds.to_netcdf(rl / f"flood_threshold_glofas_v4_rl_{rp:.1f}.nc")
    return folder, tmp_path / "uparea_glofas_v4_0.nc", rl


def local_settings(tmp_path, folder, uparea=None, thresholds=None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        glofas_path=folder,
        glofas_upstream_area_path=uparea,
        glofas_thresholds_path=thresholds,
        glofas_search_radius_km=8.0,
        _env_file=None,
    )


def test_river_pixel_by_upstream_area_and_thresholds(tmp_path):
    folder, uparea, rl = write_local(tmp_path)
    cube = glofas.build(local_settings(tmp_path, folder, uparea, rl), "local").fetch(
        sites(), DAYS[0], DAYS[-1]
    )
    bridge = cube.sel(site="bridge")
    assert float(bridge["river_lat"]) == pytest.approx(RIVER_LAT)
    assert float(bridge["river_lon"]) == pytest.approx(10.075)
    q = 10.0 + 5.0 * 11  # the 12th river pixel from the west edge
    assert float(bridge["upstream_area"]) == pytest.approx(100 + 50 * 11)
    # the value stamped D+1 00 UTC with a 24 h lead belongs to day D
    assert bridge["dis24"].values == pytest.approx([q * (1 + d.day / 10) for d in DAYS], rel=1e-6)
    assert cube["dis24"].attrs["units"] == "m3 s-1"
    assert float(bridge["dis24_rp2"]) == pytest.approx(q * 1.2)
    assert float(bridge["dis24_rp5"]) == pytest.approx(q * 1.5)
    assert float(bridge["dis24_rp20"]) == pytest.approx(q * 3.0)
    assert bridge["extraction"].item() == "river_pixel" and float(bridge["coverage"]) == 1.0
    far = cube.sel(site="far")
    assert not bool(far["covered"]) and far["extraction"].item() == "outside"
    assert np.isnan(far["dis24"].values).all()
    assert "upstream area" in cube.attrs["river_pixel_method"]


def test_without_upstream_map_the_largest_discharge_stands_in(tmp_path):
    folder, _, _ = write_local(tmp_path)
    cube = glofas.build(local_settings(tmp_path, folder), "local").fetch(sites(), DAYS[0], DAYS[1])
    bridge = cube.sel(site="bridge")
    assert (float(bridge["river_lat"]), float(bridge["river_lon"])) == pytest.approx((45.325, 10.025))
    assert bridge["dis24"].values == pytest.approx([5000 * 1.1, 5000 * 1.2])
    assert "no upstream-area map" in cube.attrs["river_pixel_method"]
    assert "dis24_rp2" not in cube


def test_files_without_lead_are_labelled_by_their_day(tmp_path):
    folder, uparea, _ = write_local(tmp_path, with_lead=False)
    cube = glofas.build(local_settings(tmp_path, folder, uparea), "local").fetch(sites(), DAYS[0], DAYS[2])
    assert cube["dis24"].sel(site="bridge").values == pytest.approx([65 * 1.1, 65 * 1.2, 65 * 1.3])


def test_remote_request_adapted_to_the_live_schema(fake_store, tmp_path):
    store = fake_store(lambda dataset, inputs: products.glofas(inputs, RIVER_LAT))
    store.schemas["cems-glofas-historical"] = GLOFAS_NEW_SCHEMA
    settings = remote_settings(tmp_path, store, glofas_search_radius_km=8.0)
    start, end = date(2024, 6, 1), date(2024, 6, 2)
    planned = glofas.build(settings, "remote").requests(sites(), start, end)
    bridge_area = planned[0][1]["area"]
    uparea, _ = products.glofas_static(bridge_area, RIVER_LAT)
    uparea.to_netcdf(tmp_path / "uparea.nc")
    settings = remote_settings(
        tmp_path, store, glofas_search_radius_km=8.0, glofas_upstream_area_path=tmp_path / "uparea.nc"
    )
    cube = glofas.build(settings, "remote").fetch(sites(), start, end)
    assert store.problems == []
    sent = store.submitted()
    assert len(sent) == 2  # two groups of sites, far apart
    inputs = next(i for _, i in sent if i["area"] == bridge_area)
    assert "hyear" not in inputs and inputs["year"] == ["2024"] and inputs["month"] == ["06"]
    assert inputs["day"] == ["01", "02", "03"]  # day D is stamped D+1 00 UTC
    assert inputs["variable"] == ["average_river_discharge_in_the_last_24_hours"]
    assert inputs["system_version"] == ["version_4_0"] and inputs["product_type"] == ["consolidated"]
    assert inputs["data_format"] == "netcdf" and inputs["download_format"] == "unarchived"
    lat, lon = products.glofas_grid(bridge_area)
    q, _ = products.glofas_network(lat, lon, RIVER_LAT)
    k = int(np.argmin(np.abs(lon - 10.075)))
    r = int(np.argmin(np.abs(lat - RIVER_LAT)))
    bridge = cube.sel(site="bridge")
    assert float(bridge["river_lon"]) == pytest.approx(10.075)
    assert bridge["dis24"].values == pytest.approx([q[r, k] * 1.1, q[r, k] * 1.2], rel=1e-6)
    assert cube.attrs["product_version"] == "version_4_0 consolidated"
    assert pd.DatetimeIndex(cube["time"].values).equals(pd.date_range(start, end))
    # a rerun is served by the cache: not even the schema is asked again
    before = len(store.calls)
    glofas.build(settings, "remote").fetch(sites(), start, end)
    assert len(store.calls) == before
    assert len([f for f in cache_files(settings) if f.suffix == ".nc"]) == 2
