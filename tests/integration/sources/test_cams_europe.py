"""CAMS Europe air quality: generated ADS files (no real file of this product exists in shared/data) in local
mode, and the reanalysis requests against the fake ADS."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from monitor.settings import Settings
from monitor.sources import cams_europe
from sites import Site, SiteSet
from tests.conftest import make_site
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings

AREA = [46.0, -1.0, 45.0, 2.0]  # N, W, S, E: crosses the Greenwich meridian (0…360 files wrap there)
SPECIES = ["so2", "no2", "o3", "pm10", "pm2p5"]


def sites() -> SiteSet:
    return SiteSet(
        [
            Site(id="west", name="West of Greenwich", geometry=box(-0.62, 45.31, -0.58, 45.35)),
            Site(id="east", name="East of Greenwich", geometry=box(1.41, 45.61, 1.46, 45.66)),
            make_site("athens", 23.73, 37.97),
        ]
    )


def test_local_zips_with_suffixed_and_bare_names(tmp_path):
    folder = tmp_path / "ads"
    folder.mkdir()
    (folder / "jan.zip").write_bytes(products.cams_month(2024, 1, AREA, SPECIES, kind="vra"))
    (folder / "feb.zip").write_bytes(products.cams_month(2024, 2, AREA, SPECIES, kind="ira", bare=True))
    settings = Settings(
        data_dir=tmp_path / "data", cams_europe_mode="local", cams_europe_path=folder, _env_file=None
    )
    cube = cams_europe.build(settings, "local").fetch(sites(), date(2024, 1, 30), date(2024, 2, 2))
    assert cube["site"].values.tolist() == ["west", "east", "athens"]
    for sp in SPECIES:
        assert cube[sp].attrs["units"] == "ug m-3"
        assert cube[sp].values[:2] == pytest.approx(products.CAMS_BASE[sp] + 11.5, abs=1e-4)
        assert np.isnan(cube[sp].values[2]).all()
    assert cube["covered"].values.tolist() == [True, True, False]
    assert cube["coverage"].values[:2] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert (
        cube["product_version"].values.tolist() == ["validated_reanalysis"] * 2 + ["interim_reanalysis"] * 2
    )
    assert cube.attrs["attribution"].startswith("Generated using Copernicus Atmosphere Monitoring Service")
    assert cube.attrs["synthetic"] == "false"


def test_days_with_too_few_hours_are_missing(tmp_path):
    times = pd.date_range("2024-03-01", periods=24 + 12, freq="h")  # 1 March whole, 2 March half
    lat, lon = np.array([45.6, 45.5]), np.array([1.4, 1.5])
    data = np.broadcast_to(
        np.arange(times.size, dtype=np.float32)[:, None, None, None], (times.size, 1, 2, 2)
    )
    ds = xr.Dataset(
        {"pm10_conc": (("time", "level", "latitude", "longitude"), data, {"units": "µg/m3"})},
        coords={"time": times, "level": [0.0], "latitude": lat, "longitude": lon},
    )
    path = tmp_path / "pm10.nc"
    ds.to_netcdf(path)
    settings = Settings(data_dir=tmp_path / "d", cams_europe_path=path, _env_file=None)
    site = SiteSet([Site(id="s", name="s", geometry=box(1.41, 45.51, 1.44, 45.54))])
    cube = cams_europe.build(settings, "local").fetch(site, date(2024, 3, 1), date(2024, 3, 3))
    assert cube["pm10"].values[0, 0] == pytest.approx(11.5)
    assert np.isnan(cube["pm10"].values[0, 1:]).all()
    assert "so2" in cube.attrs["missing_inputs"]


def test_remote_reanalysis_months_types_and_cache(fake_store, tmp_path):
    store = fake_store(lambda dataset, inputs: products.cams_europe(inputs))
    # December 2023 is old enough for the validated reanalysis, January 2024 is not
    lag = (date.today() - date(2023, 12, 31)).days - 1
    settings = remote_settings(tmp_path, store, cams_europe_validated_lag_days=lag)
    start, end = date(2023, 12, 30), date(2024, 1, 2)
    cube = cams_europe.build(settings, "remote").fetch(sites(), start, end)
    assert store.problems == []
    sent = store.submitted()
    # three groups of nearby sites (either side of the 0° tile edge, and Athens) × two months
    assert [d for d, _ in sent] == ["cams-europe-air-quality-reanalyses"] * 6
    by_month = {(i["year"][0], i["month"][0]): i["type"] for _, i in sent}
    assert by_month == {("2023", "12"): ["validated_reanalysis"], ("2024", "01"): ["interim_reanalysis"]}
    dec = sent[0][1]
    assert set(dec["variable"]) == {
        "sulphur_dioxide",
        "nitrogen_dioxide",
        "ozone",
        "particulate_matter_10um",
        "particulate_matter_2.5um",
    }
    assert dec["model"] == ["ensemble"] and dec["level"] == ["0"] and dec["data_format"] == "netcdf_zip"
    areas = {tuple(i["area"]) for _, i in sent}
    assert len(areas) == 3
    for site in sites():
        w, s, e, n = site.geometry.bounds
        assert any(a[0] > n and a[1] < w and a[2] < s and a[3] > e for a in areas)
    assert all(a[0] - a[2] < 1.0 for a in areas)  # small areas, not one spanning France to Greece
    assert cube["no2"].values[:2] == pytest.approx(products.CAMS_BASE["no2"] + 11.5, abs=1e-4)
    assert (
        cube["product_version"].values.tolist() == ["validated_reanalysis"] * 2 + ["interim_reanalysis"] * 2
    )
    assert cube.attrs["product"] == "cams-europe-air-quality-reanalyses"
    assert len([f for f in cache_files(settings) if f.suffix == ".zip"]) == 6
    before = len(store.calls)
    cams_europe.build(settings, "remote").fetch(sites(), start, end)
    assert len(store.calls) == before


def test_remote_falls_back_to_interim_when_validated_is_refused(fake_store, tmp_path):
    def refuse(dataset, inputs):
        return (
            "no validated reanalysis for this period" if inputs["type"] == ["validated_reanalysis"] else None
        )

    store = fake_store(lambda dataset, inputs: products.cams_europe(inputs), refuse=refuse)
    settings = remote_settings(tmp_path, store, cams_europe_validated_lag_days=0)
    cube = cams_europe.build(settings, "remote").fetch(sites(), date(2024, 1, 5), date(2024, 1, 6))
    types = [i["type"][0] for _, i in store.submitted()]
    assert types == ["validated_reanalysis", "interim_reanalysis"] * 3
    assert cube.attrs["product_version"] == "interim_reanalysis"
    assert np.isfinite(cube["o3"].values).all()
