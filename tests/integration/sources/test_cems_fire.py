"""CEMS fire danger: the GEFF-ERA5 ensemble file at Pedrógão Grande (June 2017), and the EWDS requests of
cems-fire-historical-v1 against the fake store."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from monitor.settings import Settings
from monitor.sources import cems_fire
from sites import SiteSet
from tests.conftest import make_site
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings

PEDROGAO = make_site("pedrogao-grande", -8.23, 39.95, half=0.01)


@pytest.mark.realdata
@pytest.mark.parametrize("ensemble", ["control", "mean"])
def test_geff_era5_at_pedrogao_grande_peaks_around_17_june_2017(shared_data, tmp_path, ensemble):
    path = shared_data / "cems_fire" / "geff_era5" / "cds_fwi_ens_PG.nc"
    settings = Settings(
        data_dir=tmp_path / "data", cems_fire_path=path, cems_fire_ensemble=ensemble, _env_file=None
    )
    sites = SiteSet([PEDROGAO, make_site("lisbon", -9.14, 38.72)])
    cube = cems_fire.build(settings, "local").fetch(sites, date(2017, 6, 1), date(2017, 6, 30))
    fwi = cube["fwi"].sel(site="pedrogao-grande").to_series()
    assert fwi.notna().all() and len(fwi) == 30
    assert cube["fwi"].attrs["units"] == "1"
    # the fire broke out on 17 June 2017: the index peaks in the days around it, far above the month's median
    peak = fwi.idxmax()
    assert pd.Timestamp("2017-06-15") <= peak <= pd.Timestamp("2017-06-21")
    assert fwi["2017-06-17"] > 1.5 * fwi.median()
    assert fwi.max() > 35
    # one 0.5° ensemble cell centred at 40 N 8 W: it holds the site, not Lisbon
    assert cube["covered"].values.tolist() == [True, False]
    assert float(cube["coverage"].sel(site="pedrogao-grande")) == pytest.approx(1.0)
    assert cube.attrs["ensemble"] == ensemble
    label = "member 0 (control)" if ensemble == "control" else "ensemble mean"
    assert label in cube.attrs["product_version"]
    assert cube.attrs["attribution"].startswith("Contains modified Copernicus Emergency Management Service")


def fire_sites() -> SiteSet:
    return SiteSet([make_site("serra-da-estrela", -7.6, 40.32), make_site("coimbra", -8.42, 40.21)])


def test_remote_requests_longitudes_and_cache(fake_store, tmp_path):
    store = fake_store(lambda dataset, inputs: products.cems_fire(inputs))
    settings = remote_settings(tmp_path, store)
    start, end = date(2024, 7, 30), date(2024, 8, 2)
    cube = cems_fire.build(settings, "remote").fetch(fire_sites(), start, end)
    assert store.problems == []
    sent = store.submitted()
    assert [d for d, _ in sent] == ["cems-fire-historical-v1"] * 2
    jul, aug = (i for _, i in sent)
    assert jul["product_type"] == "reanalysis" and jul["variable"] == ["fire_weather_index"]
    assert jul["dataset_type"] == "consolidated_dataset" and jul["system_version"] == ["4_1"]
    assert (jul["year"], jul["month"], jul["day"]) == (["2024"], ["07"], ["30", "31"])
    assert (aug["month"], aug["day"]) == (["08"], ["01", "02"])
    assert jul["grid"] == "0.25/0.25" and jul["data_format"] == "netcdf"
    n, w, s, e = jul["area"]
    assert n > 40.32 and w < -8.42 and s < 40.21 and e > -7.6
    # fwinx on 0…360 longitudes (352°E = 8°W): each site gets its day-of-month value
    expected = pd.date_range(start, end, freq="D").day.to_numpy()
    assert cube["fwi"].values == pytest.approx(np.vstack([expected, expected]))
    assert cube["covered"].values.all()
    assert cube.attrs["product_version"] == "consolidated_dataset 4_1"
    before = len(store.calls)
    cems_fire.build(settings, "remote").fetch(fire_sites(), start, end)
    assert len(store.calls) == before
    assert len([f for f in cache_files(settings) if f.suffix == ".nc"]) == 2


def test_remote_falls_back_to_the_intermediate_dataset(fake_store, tmp_path):
    def refuse(dataset, inputs):
        if inputs["dataset_type"] == "consolidated_dataset":
            return "the consolidated dataset does not cover the requested dates yet"
        return None

    store = fake_store(lambda dataset, inputs: products.cems_fire(inputs), refuse=refuse)
    cube = cems_fire.build(remote_settings(tmp_path, store), "remote").fetch(
        fire_sites(), date(2024, 8, 5), date(2024, 8, 6)
    )
    kinds = [i["dataset_type"] for _, i in store.submitted()]
    assert kinds == ["consolidated_dataset", "intermediate_dataset"]
    assert cube.attrs["product_version"] == "intermediate_dataset 4_1"
    assert cube["fwi"].values[0].tolist() == [5.0, 6.0]
