"""ERA5-Land: local mode on real CDS files, remote mode against the fake CDS (requests, de-accumulation,
expver, cache)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from shapely.geometry import box

from monitor.settings import Settings
from monitor.sources import era5_land
from monitor.sources.era5_land import relative_humidity
from sites import Site, SiteSet
from tests.conftest import make_site
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings, uk_sites

CONTRACT_ATTRS = {
    "source",
    "product",
    "product_version",
    "attribution",
    "request",
    "retrieved_at",
    "synthetic",
}


def local_settings(tmp_path, path) -> Settings:
    return Settings(data_dir=tmp_path / "data", era5_land_mode="local", era5_land_path=path, _env_file=None)


def check_contract(cube: xr.Dataset, sites: SiteSet, start: date, end: date) -> None:
    assert cube["site"].values.tolist() == sites.ids
    days = pd.date_range(start, end, freq="D")
    assert pd.DatetimeIndex(cube["time"].values).equals(days)
    for name in era5_land.VARIABLES:
        assert cube[name].dims == ("site", "time")
        assert cube[name].attrs["units"]
    assert cube["coverage"].dims == ("site",)
    assert cube["covered"].dtype == bool
    assert set(cube.attrs) >= CONTRACT_ATTRS
    assert cube.attrs["synthetic"] == "false"
    assert cube.attrs["attribution"].startswith(
        "Generated using Copernicus Climate Change Service information"
    )


# --- local mode on real files -----------------------------------------------------------------------


@pytest.mark.realdata
def test_local_netcdf_berlin(shared_data, tmp_path):
    path = shared_data / "era5" / "ERA5_example_data.nc"
    # a small site around the centre of the north-west cell (52.6 N, 13.1 E), and one outside the 2×3 grid
    sites = SiteSet([make_site("berlin-nw", 13.1, 52.6, half=0.01), make_site("paris", 2.35, 48.85)])
    cube = era5_land.build(local_settings(tmp_path, path), "local").fetch(
        sites, date(2017, 7, 1), date(2017, 7, 3)
    )
    check_contract(cube, sites, date(2017, 7, 1), date(2017, 7, 3))

    raw = xr.open_dataset(path)
    cell = raw.sel(latitude=52.6, longitude=13.1, method="nearest").sel(
        time=slice("2017-07-01", "2017-07-03T23")
    )
    t = cell["t2m"].values.reshape(3, 24) - 273.15
    assert cube["tas"].values[0] == pytest.approx(t.mean(axis=1), abs=1e-4)
    assert cube["tasmax"].values[0] == pytest.approx(t.max(axis=1), abs=1e-4)
    speed = np.hypot(cell["u10"].values, cell["v10"].values).reshape(3, 24)
    assert cube["sfcWind"].values[0] == pytest.approx(speed.mean(axis=1), abs=1e-4)
    noon = round(12 - 13.1 / 15)  # 11 UTC
    assert cube["tas_noon"].values[0] == pytest.approx(t[:, noon], abs=1e-4)
    # no dewpoint nor precipitation in this file: NaN, and said so
    assert np.isnan(cube["hurs"].values).all() and np.isnan(cube["pr"].values).all()
    assert "d2m" in cube.attrs["missing_inputs"] and "tp" in cube.attrs["missing_inputs"]
    assert cube["covered"].values.tolist() == [True, False]
    assert cube["coverage"].values[0] == pytest.approx(1.0)
    assert np.isnan(cube["tas"].values[1]).all()


@pytest.mark.realdata
def test_local_long_period_is_reduced_in_yearly_chunks(shared_data, tmp_path):
    path = shared_data / "era5" / "ERA5_example_data.nc"  # all of 2017
    sites = SiteSet([make_site("berlin", 13.35, 52.47, half=0.05)])
    source = era5_land.build(local_settings(tmp_path, path), "local")
    long = source.fetch(sites, date(2016, 12, 30), date(2018, 1, 2))  # 369 days: two chunks
    short = source.fetch(sites, date(2017, 12, 30), date(2017, 12, 30))
    assert long.sizes["time"] == 369
    tas = long["tas"].sel(site="berlin").to_series()
    assert tas["2016-12-30":"2016-12-31"].isna().all() and tas["2018-01-01":].isna().all()
    assert tas["2017-01-01":"2017-12-31"].notna().all()
    assert float(long["tas"].sel(site="berlin", time="2017-12-30")) == pytest.approx(
        short["tas"].item(), abs=1e-5
    )


@pytest.mark.realdata
def test_local_grib_over_uk_world_heritage_sites(shared_data, tmp_path):
    sites = uk_sites(
        shared_data, ("1000092", "1000103", "1000097", "1000089")
    )  # Tower, Bath, Stonehenge, Durham
    sites = SiteSet([*sites, make_site("madrid", -3.70, 40.42)])
    path = shared_data / "era5" / "era5-2mt-2019-03-uk.grib"
    cube = era5_land.build(local_settings(tmp_path, path), "local").fetch(
        sites, date(2019, 3, 1), date(2019, 3, 31)
    )
    check_contract(cube, sites, date(2019, 3, 1), date(2019, 3, 31))
    uk = cube.isel(site=slice(0, 4))
    assert uk["covered"].values.all()
    assert uk["coverage"].values == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(uk["tas"].values).all()
    assert (uk["tasmin"] <= uk["tas"]).all() and (uk["tas"] <= uk["tasmax"]).all()
    assert -5 < float(uk["tas"].mean()) < 15  # March in England
    assert not cube["covered"].values[4]

    # Stonehenge and Avebury (two separate areas) against a direct polygon-cell computation on the grid
    from monitor.sources.normalise import open_normalised

    geom = sites["whs-1000097"].geometry
    with open_normalised(path) as (ds,):
        day = ds["t2m"].sel(time=slice("2019-03-10", "2019-03-10T23")).load()
    lat, lon = day["lat"].values, day["lon"].values
    w, s, e, n = geom.bounds
    num = np.zeros(24)
    den = 0.0
    for i in np.flatnonzero((lat > s - 0.25) & (lat < n + 0.25)):
        for j in np.flatnonzero((lon > w - 0.25) & (lon < e + 0.25)):
            a = geom.intersection(box(lon[j] - 0.125, lat[i] - 0.125, lon[j] + 0.125, lat[i] + 0.125)).area
            weight = a * np.cos(np.deg2rad(lat[i]))
            num += weight * day.values[:, i, j]
            den += weight
    expected = (num / den - 273.15).mean()
    assert float(cube["tas"].sel(site="whs-1000097", time="2019-03-10")) == pytest.approx(expected, abs=1e-3)


@pytest.mark.realdata
def test_local_packed_files_are_concatenated(shared_data, tmp_path):
    folder = tmp_path / "era5"
    folder.mkdir()
    for name in ("era5_2t_1.nc", "era5_2t_2.nc"):  # links, not copies
        (folder / name).symlink_to(shared_data / "era5" / name)
    sites = SiteSet([make_site("ebro", 1.0, 41.0)])
    cube = era5_land.build(local_settings(tmp_path, folder), "local").fetch(
        sites, date(2021, 3, 1), date(2021, 3, 2)
    )
    expected = []
    for name in ("era5_2t_1.nc", "era5_2t_2.nc"):
        with xr.open_dataset(shared_data / "era5" / name) as ds:
            expected.append(float(ds["t2m"].sel(latitude=40.0, longitude=0.0).item()) - 273.15)
    # 12 UTC is the site's noon hour (lon 1°E); one value a day is not enough for a daily mean
    assert cube["tas_noon"].values[0] == pytest.approx(expected, abs=1e-3)
    assert np.isnan(cube["tas"].values).all()


def test_local_path_errors(tmp_path):
    from monitor.sources.base import SourceNotAvailableError

    sites = SiteSet([make_site("x", 10.0, 45.0)])
    with pytest.raises(SourceNotAvailableError, match="HM_ERA5_LAND_PATH"):
        era5_land.build(local_settings(tmp_path, None), "local").fetch(
            sites, date(2024, 1, 1), date(2024, 1, 2)
        )
    result = era5_land.check(local_settings(tmp_path, tmp_path / "missing"))
    assert result["mode"] == "local" and result["reachable"] is False
    (tmp_path / "junk.nc").write_text("not a netcdf")
    result = era5_land.check(local_settings(tmp_path, tmp_path))
    assert result["reachable"] is False and "no readable" in result["message"]


# --- remote mode against the fake CDS ---------------------------------------------------------------

COAST_LON = 12.0


def era5_responder(dataset, inputs):
    assert dataset == "reanalysis-era5-land"
    return products.era5_land(inputs, coast_lon=COAST_LON, preliminary_from=date(2024, 2, 1))


def remote_sites() -> SiteSet:
    return SiteSet(
        [
            Site(id="inland", name="Inland", geometry=box(12.21, 45.01, 12.24, 45.04)),
            # half on cell 11.9°E (11.85–11.95, sea: west of COAST_LON), half on cell 12.0°E (land)
            Site(id="coast", name="Coast", geometry=box(11.90, 45.11, 12.00, 45.14)),
        ]
    )


def test_remote_fetch_requests_values_and_cache(fake_store, tmp_path):
    store = fake_store(era5_responder)
    settings = remote_settings(tmp_path, store)
    sites = remote_sites()
    start, end = date(2024, 1, 30), date(2024, 2, 2)
    cube = era5_land.build(settings, "remote").fetch(sites, start, end)
    assert store.problems == []
    check_contract(cube, sites, start, end)

    # what was sent: one request per month, [start − 1, end + 1], 24 hours, NetCDF, the padded area
    sent = store.submitted()
    assert [d for d, _ in sent] == ["reanalysis-era5-land"] * 2
    jan, feb = (inputs for _, inputs in sent)
    assert (jan["year"], jan["month"], jan["day"]) == ("2024", "01", ["29", "30", "31"])
    assert (feb["month"], feb["day"]) == ("02", ["01", "02", "03"])
    assert jan["time"] == [f"{h:02d}:00" for h in range(24)]
    assert set(jan["variable"]) == {
        "2m_temperature",
        "2m_dewpoint_temperature",
        "total_precipitation",
        "10m_u_component_of_wind",
        "10m_v_component_of_wind",
    }
    assert jan["data_format"] == "netcdf" and jan["download_format"] == "unarchived"
    w, s, e, n = shapely.total_bounds(sites.geometries(buffered=True))
    area = jan["area"]
    assert area == feb["area"]
    assert area[0] >= n + 0.1 - 1e-9 and area[1] <= w - 0.1 + 1e-9
    assert area[2] <= s - 0.1 + 1e-9 and area[3] >= e + 0.1 - 1e-9
    assert area[0] - n < 0.21 and e - area[3] > -0.21
    # the cdsapi 0.7 / ecmwf-datastores flow, in order, for the first month
    job = store.api_calls("POST", r"/execution$")[0]
    first = store.calls[: store.calls.index(job) + 1]
    assert [(c.method, c.path) for c in first] == [
        ("GET", "/api/catalogue/v1/messages"),
        ("GET", "/api/retrieve/v1/processes/reanalysis-era5-land"),
        ("POST", "/api/retrieve/v1/processes/reanalysis-era5-land/execution"),
    ]
    job_id = next(iter(store.jobs))
    after = [(c.method, c.path.replace(job_id, "{id}")) for c in store.calls[len(first) :]]
    flow = [
        ("GET", "/api/retrieve/v1/jobs/{id}"),  # our poll: running
        ("GET", "/api/retrieve/v1/jobs/{id}"),  # our poll: successful
        ("GET", "/api/retrieve/v1/jobs/{id}"),  # get_results(): its own status check
        ("GET", "/api/retrieve/v1/jobs/{id}"),  # get_results(): the rel=results link
        ("GET", "/api/retrieve/v1/jobs/{id}/results"),
        ("HEAD", "/download/{id}.nc"),
        ("GET", "/download/{id}.nc"),
    ]
    assert after[: len(flow)] == flow
    # the token went to the API, never to the download host
    api = [c for c in store.calls if c.path.startswith("/api/retrieve/")]
    assert api and all(c.headers.get("private-token") == store.token for c in api)
    downloads = [c for c in store.calls if c.path.startswith("/download/")]
    assert {c.method for c in downloads} == {"HEAD", "GET"}

    inland = cube.sel(site="inland")
    assert inland["tas"].values == pytest.approx(10 + 11.5 / 2, abs=1e-4)
    assert inland["tasmin"].values == pytest.approx(10.0, abs=1e-4)
    assert inland["tasmax"].values == pytest.approx(21.5, abs=1e-4)
    assert inland["sfcWind"].values == pytest.approx(5.0, abs=1e-5)
    hours = np.arange(24)
    rh = relative_humidity(283.15 + hours / 2, 278.15 + hours / 2).mean()
    assert inland["hurs"].values == pytest.approx(rh, abs=1e-3)
    # de-accumulation: day D gets 24 h × 0.1·D mm; 31 January is closed by the 00 UTC value of 1 February
    days = pd.date_range(start, end, freq="D")
    assert inland["pr"].values == pytest.approx(2.4 * days.day.to_numpy(), abs=1e-3)
    noon = round(12 - 12.225 / 15)
    assert noon == 11
    assert inland["tas_noon"].values == pytest.approx(10 + noon / 2, abs=1e-4)
    prev = (days - pd.Timedelta(days=1)).day.to_numpy()
    expected_noon = (24 - noon) * 0.1 * prev + noon * 0.1 * days.day.to_numpy()
    assert inland["pr_noon"].values == pytest.approx(expected_noon, abs=1e-3)

    # the coastal site: the sea half drops out, the value is the land cell's, coverage says half
    coast = cube.sel(site="coast")
    assert float(coast["coverage"]) == pytest.approx(0.5, abs=1e-3)
    assert coast["tas"].values == pytest.approx(inland["tas"].values, abs=1e-4)

    # expver 0001 in January, 0005 from February: per-day product_version coordinate
    assert cube["product_version"].dims == ("time",)
    assert cube["product_version"].values.tolist()[:2] == ["ERA5-Land (final, expver 0001)"] * 2
    assert cube["product_version"].values.tolist()[2:] == ["ERA5-Land (preliminary, expver 0005)"] * 2
    assert "final" in cube.attrs["product_version"] and "preliminary" in cube.attrs["product_version"]

    # provenance: the requests as sent, no secret anywhere
    requests = json.loads(cube.attrs["request"])
    assert [r["dataset"] for r in requests] == ["reanalysis-era5-land"] * 2
    assert store.token not in json.dumps(cube.attrs)

    # the raw cache: one file + sidecar per request; a rerun (even by a new source) sends nothing
    files = cache_files(settings)
    assert len([f for f in files if f.suffix == ".zip"]) == 2
    assert len([f for f in files if f.suffix == ".json"]) == 2
    before = len(store.calls)
    again = era5_land.build(settings, "remote").fetch(sites, start, end)
    assert len(store.calls) == before
    xr.testing.assert_identical(again.drop_attrs(), cube.drop_attrs())
