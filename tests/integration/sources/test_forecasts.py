"""Forecast fetches: the CAMS Europe and GloFAS forecast requests against the fake ADS/EWDS, their files in
the data stores' forecast shape (reference time × lead), and the demo's synthetic forecasts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from monitor.settings import Settings
from monitor.sources import (
    SourceNotAvailableError,
    cams_europe,
    forecast_capable,
    glofas,
    make_source,
    synthetic,
)
from sites import Site, SiteSet
from tests.conftest import make_site
from tests.integration.sources import products
from tests.integration.sources.conftest import cache_files, remote_settings

ISSUED = datetime(2024, 6, 1, tzinfo=UTC)
CAMS_BASE = {"so2": 2.0, "no2": 20.0, "o3": 60.0, "pm10": 15.0, "pm2p5": 9.0}
REQUEST_NAMES = {request: ours for ours, (request, _) in cams_europe.SPECIES.items()}


def cams_forecast(dataset: str, inputs: dict[str, Any]) -> bytes:
    """The forecast as the ADS sends it with ``netcdf_zip``: one NetCDF per species, ``<sp>_conc``
    (forecast_reference_time, forecast_period, level, latitude, longitude) in µg m-3, 2-D ``valid_time``,
    longitudes 0…360; value = species base + lead hour."""
    assert dataset == cams_europe.FORECAST_DATASET
    n, w, s, e = inputs["area"]
    lat = np.round(np.arange(n, s - 0.05, -0.1), 4)
    lon = np.round(np.arange(w, e + 0.05, 0.1), 4) % 360.0
    day = pd.Timestamp(inputs["date"][0].split("/")[0])
    leads = pd.to_timedelta([int(h) for h in inputs["leadtime_hour"]], unit="h")
    members = {}
    for request_name in inputs["variable"]:
        sp = REQUEST_NAMES[request_name]
        values = CAMS_BASE[sp] + leads.total_seconds().to_numpy() / 3600.0
        data = np.broadcast_to(values[None, :, None, None, None], (1, leads.size, 1, lat.size, lon.size))
        ds = xr.Dataset(
            {
                f"{sp}_conc": (
                    ("forecast_reference_time", "forecast_period", "level", "latitude", "longitude"),
                    data.astype(np.float32),
                    {"units": "µg m-3", "species": sp},
                )
            },
            coords={
                "forecast_reference_time": ("forecast_reference_time", [day.to_datetime64()]),
                "forecast_period": ("forecast_period", leads.to_numpy()),
                "valid_time": (
                    ("forecast_reference_time", "forecast_period"),
                    (day + leads).to_numpy()[None, :],
                ),
                "level": ("level", np.array([0.0], dtype=np.float32), {"units": "m"}),
                "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"}),
            },
            attrs={"title": f"{sp} Air Pollutant FORECAST at the Surface"},
        )
        members[f"{sp}.forecast.ENS.{day:%Y%m%d}.nc"] = products.to_bytes(ds)
    return products.zip_bytes(members)


def cams_sites() -> SiteSet:
    return SiteSet(
        [
            Site(id="west", name="West of Greenwich", geometry=box(-0.62, 45.31, -0.58, 45.35)),
            make_site("athens", 23.73, 37.97),
        ]
    )


def test_cams_forecast_request_and_daily_means_by_lead(fake_store, tmp_path):
    store = fake_store(cams_forecast)
    settings = remote_settings(tmp_path, store)
    source = cams_europe.build(settings, "remote")
    assert forecast_capable(source)
    cube = source.fetch_forecast(cams_sites(), ISSUED)
    assert store.problems == []
    sent = store.submitted()
    assert len(sent) == 2  # one request per group of nearby sites
    for dataset, inputs in sent:
        assert dataset == "cams-europe-air-quality-forecasts"
        assert inputs["type"] == ["forecast"] and inputs["model"] == ["ensemble"] and inputs["level"] == ["0"]
        assert inputs["date"] == ["2024-06-01/2024-06-01"] and inputs["time"] == ["00:00"]
        assert inputs["leadtime_hour"] == [str(h) for h in range(97)]
        assert sorted(inputs["variable"]) == sorted(r for r, _ in cams_europe.SPECIES.values())
        assert inputs["data_format"] == "netcdf_zip" and len(inputs["area"]) == 4
    # four valid days from the issue day: hours 0–23 of day k are leads 24k … 24k + 23
    days = pd.DatetimeIndex(cube["time"].values)
    assert list(days.date) == [date(2024, 6, d) for d in (1, 2, 3, 4)]
    assert cube["lead_days"].values.tolist() == [0, 1, 2, 3]
    expected = CAMS_BASE["pm10"] + 24 * np.arange(4) + 11.5
    assert cube["pm10"].sel(site="west").values == pytest.approx(expected)
    assert cube["pm10"].attrs["units"] == "ug m-3"
    assert cube.attrs["issued"] == "2024-06-01T00:00:00+00:00" and cube.attrs["kind"] == "forecast"
    assert cube.attrs["product"] == "cams-europe-air-quality-forecasts"
    assert cube.attrs["product_version"] == "forecast" and cube.attrs["synthetic"] == "false"
    assert "Atmosphere Monitoring Service" in cube.attrs["attribution"]
    # a second fetch of the same issue comes from the cache
    before = len(store.calls)
    source.fetch_forecast(cams_sites(), ISSUED)
    assert len(store.calls) == before and len([f for f in cache_files(settings) if f.suffix == ".zip"]) == 2


def test_glofas_control_forecast_request_and_valid_days(fake_store, tmp_path):
    river_lat = 45.225
    store = fake_store(lambda dataset, inputs: products.glofas_forecast(inputs, river_lat))
    settings = remote_settings(tmp_path, store, glofas_search_radius_km=8.0)
    one = SiteSet([Site(id="bridge", name="Bridge", geometry=box(9.98, 45.26, 10.02, 45.30))])
    cube = glofas.build(settings, "remote").fetch_forecast(one, ISSUED)
    assert store.problems == []
    ((dataset, inputs),) = store.submitted()
    assert dataset == "cems-glofas-forecast"
    assert (inputs["year"], inputs["month"], inputs["day"]) == (["2024"], ["06"], ["01"])
    assert inputs["leadtime_hour"] == [str(24 * k) for k in range(1, 31)]
    assert inputs["product_type"] == ["control_forecast"] and inputs["system_version"] == ["operational"]
    assert inputs["data_format"] == "netcdf" and inputs["download_format"] == "unarchived"
    # lead 24 h is the mean of the issue day: 30 valid days from 1 June, value ∝ 1 + day / 10
    days = pd.DatetimeIndex(cube["time"].values)
    assert days[0].date() == date(2024, 6, 1) and days.size == 30
    assert cube["lead_days"].values.tolist() == list(range(30))
    values = cube["dis24"].sel(site="bridge").values
    assert np.isfinite(values).all()
    assert values / values[0] == pytest.approx([(1 + d / 10) / 1.1 for d in range(1, 31)], rel=1e-5)
    assert cube.attrs["product"] == "cems-glofas-forecast" and cube.attrs["issued"].startswith("2024-06-01")


def test_observed_glofas_requests_never_ask_the_forecast(fake_store, tmp_path):
    store = fake_store(lambda dataset, inputs: b"")
    settings = remote_settings(tmp_path, store)
    source = glofas.build(settings, "remote")
    one = SiteSet([make_site("cologne", 6.96, 50.94)])
    assert {d for d, _, _ in source.requests(one, date(2024, 6, 1), date(2024, 6, 3))} == {glofas.DATASET}


def test_local_mode_fetches_no_forecast(tmp_path):
    settings = Settings(data_dir=tmp_path, glofas_mode="local", glofas_path=tmp_path, _env_file=None)
    source = make_source("glofas", settings)
    with pytest.raises(SourceNotAvailableError):
        source.fetch_forecast(cams_sites(), ISSUED)
    fire = make_source("cems_fire", settings.model_copy(update={"cems_fire_mode": "remote"}))
    assert not forecast_capable(fire)  # no confirmed fire-danger forecast request: demo only


def demo_sites() -> SiteSet:
    return SiteSet(
        [
            make_site("cologne", 6.9583, 50.9413),
            make_site("athens", 23.7257, 37.9715),
            make_site("bergen", 5.3242, 60.3975),
        ]
    )


def test_demo_forecasts_are_deterministic_labelled_and_show_the_injected_events(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    flood = make_source("glofas", settings).fetch_forecast(demo_sites(), ISSUED)
    again = make_source("glofas", settings).fetch_forecast(demo_sites(), ISSUED)
    xr.testing.assert_identical(flood, again)
    assert flood.attrs["synthetic"] == "true" and "synthetic" in flood.attrs["product"]
    assert flood.sizes["time"] == 30 and flood["lead_days"].values[-1] == 29
    event = next(e for e in synthetic.FORECAST_EVENTS if e.variable == "dis24")
    rp20 = flood["dis24_rp20"].sel(site="cologne").values[0]
    peak = flood["dis24"].sel(site="cologne").values[event.first_lead : event.first_lead + len(event.floors)]
    assert (peak >= np.array(event.floors) * rp20 - 1e-3 * rp20).all()
    assert flood["dis24"].sel(site="bergen").values.max() < flood["dis24_rp20"].sel(site="bergen").values[0]

    fire = make_source("cems_fire", settings).fetch_forecast(demo_sites(), ISSUED)
    assert fire.sizes["time"] == 10
    spell = next(e for e in synthetic.FORECAST_EVENTS if e.variable == "fwi")
    leads = slice(spell.first_lead, spell.first_lead + len(spell.floors))
    assert (fire["fwi"].sel(site="athens").values[leads] >= np.array(spell.floors) - 0.01).all()
    assert fire["fwi"].sel(site="bergen").values.max() < min(spell.floors)  # outside the event's box
    assert make_source("cams_europe", settings).fetch_forecast(demo_sites(), ISSUED).sizes["time"] == 4


def test_demo_forecast_error_grows_with_the_lead(tmp_path):
    """Over many issues, the spread of forecast minus synthetic truth grows with the lead."""
    sites = SiteSet([make_site(f"s{i}", 10.0 + i, 45.0 + (i % 5)) for i in range(8)])
    errors = []
    for k in range(12):
        issued = date(2024, 1, 1) + pd.Timedelta(days=17 * k)
        fc = synthetic.forecast(sites, issued, 10, ["pm10"])
        truth = synthetic.generate(sites, issued, issued + pd.Timedelta(days=9), ["pm10"])
        errors.append(np.log(fc["pm10"].values / truth["pm10"].values))
    spread = np.concatenate(errors).std(axis=0)
    assert spread[0] < spread[4] < spread[9]
    assert spread[0] == pytest.approx(synthetic.FORECAST_ERROR["pm10"][1], rel=0.5)
