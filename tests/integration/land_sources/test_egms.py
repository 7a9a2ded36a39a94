"""EGMS from CSV files generated in the documented L2a/L2b/L3 layouts (no real EGMS sample is available)."""

from __future__ import annotations

import functools
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from monitor.sources.base import SourceNotAvailableError
from sites import SiteSet
from tests.conftest import make_site
from tests.integration.land_sources.conftest import make_settings

L2_HEAD = [
    "pid",
    "mp_type",
    "latitude",
    "longitude",
    "easting",
    "northing",
    "height",
    "height_wgs84",
    "line",
    "pixel",
    "rmse",
    "temporal_coherence",
    "amplitude_dispersion",
    "incidence_angle",
    "track_angle",
    "los_east",
    "los_north",
    "los_up",
    "mean_velocity",
    "mean_velocity_std",
    "acceleration",
    "acceleration_std",
    "seasonality",
    "seasonality_std",
]
L3_HEAD = [
    "pid",
    "easting",
    "northing",
    "height",
    "rmse",
    "mean_velocity",
    "mean_velocity_std",
    "acceleration",
    "acceleration_std",
    "seasonality",
    "seasonality_std",
]
TO_3035 = Transformer.from_crs(4326, 3035, always_xy=True)
CX, CY = 12.3387, 45.4341  # Piazza San Marco

SAN_MARCO = make_site("san_marco", CX, CY, half=0.002)
SAN_MARCO_BUF = make_site("san_marco_buffered", CX, CY, half=0.002, buffer_m=150)
NOISY = make_site("noisy_corner", 12.376, 45.45, half=0.002)  # inside the data extent, only bad points
BATH = make_site("bath", -2.3590, 51.3811, half=0.003)


def _dates(last: date, n: int = 40) -> list[str]:
    return [(last - timedelta(days=6 * k)).strftime("%Y%m%d") for k in reversed(range(n))]


def _l2_frame(last: date, velocity_offset: float = 0.0) -> pd.DataFrame:
    lon, lat = np.meshgrid(np.arange(12.300, 12.380, 0.0005), np.arange(45.40, 45.46, 0.0005))
    lon, lat = lon.ravel(), lat.ravel()
    n = lon.size
    east, north = TO_3035.transform(lon, lat)
    velocity = -2.0 + 100.0 * (lon - CX) + velocity_offset  # 0.1 mm/yr per 0.001° eastwards
    std = np.full(n, 0.6)
    bad = (np.arange(n) % 7 == 0) | (lon > 12.372)
    std[bad] = 2.5
    velocity[bad] = 40.0  # would wreck every statistic if the quality filter let them through
    frame = pd.DataFrame(
        {
            "pid": [f"1Pnj{k:07d}" for k in range(n)],
            "mp_type": "PS",
            "latitude": lat,
            "longitude": lon,
            "easting": east,
            "northing": north,
            "height": 2.0,
            "height_wgs84": 46.0,
            "line": 100,
            "pixel": 200,
            "rmse": 1.1,
            "temporal_coherence": 0.8,
            "amplitude_dispersion": 0.2,
            "incidence_angle": 39.0,
            "track_angle": -10.0,
            "los_east": 0.6,
            "los_north": -0.1,
            "los_up": 0.78,
            "mean_velocity": velocity,
            "mean_velocity_std": std,
            "acceleration": 0.25,
            "acceleration_std": 0.05,
            "seasonality": 1.0,
            "seasonality_std": 0.2,
        }
    )[L2_HEAD]
    for k, d in enumerate(_dates(last)):
        frame[d] = np.round(velocity * k / 60.0, 2)
    return frame


def l3_frame(last: date, velocity: float) -> pd.DataFrame:
    x0, y0 = TO_3035.transform(CX, CY)
    east, north = np.meshgrid(np.arange(x0 - 2000, x0 + 2000, 100.0), np.arange(y0 - 2000, y0 + 2000, 100.0))
    n = east.size
    frame = pd.DataFrame(
        {
            "pid": [f"L3{k:07d}" for k in range(n)],
            "easting": east.ravel() + 50,
            "northing": north.ravel() + 50,
            "height": 3.0,
            "rmse": 0.9,
            "mean_velocity": velocity,
            "mean_velocity_std": 0.3,
            "acceleration": -0.1,
            "acceleration_std": 0.02,
            "seasonality": 0.5,
            "seasonality_std": 0.1,
        }
    )[L3_HEAD]
    for d in _dates(last, 10):
        frame[d] = 0.0
    return frame


@functools.cache
def l2_frame(last: date, velocity_offset: float = 0.0) -> pd.DataFrame:
    return _l2_frame(last, velocity_offset).copy()


@pytest.fixture(scope="module")
def egms_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("egms")
    (folder / "L2b").mkdir(parents=True)
    (folder / "L3").mkdir()
    l2_frame(date(2023, 12, 26)).to_csv(folder / "L2b/EGMS_L2b_146_0296_IW2_VV_2019_2023_1.csv", index=False)
    l2_frame(date(2022, 12, 27), velocity_offset=-1.0).to_csv(
        folder / "L2b/EGMS_L2b_146_0296_IW2_VV_2018_2022_1.csv", index=False
    )
    l3_frame(date(2023, 12, 20), velocity=-5.0).to_csv(
        folder / "L3/EGMS_L3_E44N24_100km_U_2019_2023_1.csv", index=False
    )
    l3_frame(date(2023, 12, 20), velocity=9.0).to_csv(
        folder / "L3/EGMS_L3_E44N24_100km_E_2019_2023_1.csv", index=False
    )
    return folder


def egms(tmp_path, folder, **overrides):
    from monitor.sources import egms as module

    settings = make_settings(tmp_path, egms_mode="local", egms_path=folder, **overrides)
    return module.build(settings, "local"), settings


def _expected(frame: pd.DataFrame, site) -> pd.Series:
    w, s, e, n = site.geometry.bounds
    inside = (
        frame["longitude"].between(w, e)
        & frame["latitude"].between(s, n)
        & (frame["mean_velocity_std"] < 1.5)
    )
    return frame.loc[inside, "mean_velocity"]


def test_l2b_statistics_quality_filter_and_time(egms_dir, tmp_path):
    source, _ = egms(tmp_path, egms_dir)
    cube = source.fetch(
        SiteSet([SAN_MARCO, SAN_MARCO_BUF, NOISY, BATH]), date(2023, 1, 1), date(2024, 12, 31)
    )
    # auto level: L2b; the 2019-2023 release only (its last acquisition is in the period)
    assert [str(t)[:10] for t in cube.time.values] == ["2023-12-26"]
    assert cube.attrs["product"].startswith("EGMS L2b") and cube.attrs["product_version"] == "2019_2023_v1"
    expected = _expected(l2_frame(date(2023, 12, 26)), SAN_MARCO)
    got = cube.sel(site="san_marco").isel(time=0)
    assert int(got.egms_points) == len(expected) > 10
    assert float(got.ground_velocity_mean) == pytest.approx(expected.mean(), abs=1e-4)
    assert float(got.ground_velocity_min) == pytest.approx(expected.min(), abs=1e-4)
    assert float(got.ground_velocity_max) == pytest.approx(expected.max(), abs=1e-4)
    assert float(got.ground_velocity_differential) == pytest.approx(expected.max() - expected.min(), abs=1e-4)
    assert float(got.ground_acceleration_mean) == pytest.approx(0.25)
    assert float(got.ground_velocity_max) < 0  # no 40 mm/yr outlier passed the filter
    buffered = cube.sel(site="san_marco_buffered").isel(time=0)
    assert int(buffered.egms_points) > int(got.egms_points)
    # the differential is taken inside the polygon only, so the buffer does not change it
    assert float(buffered.ground_velocity_differential) == pytest.approx(
        float(got.ground_velocity_differential)
    )
    assert cube.ground_velocity_mean.attrs["units"] == "mm yr-1"
    assert cube.ground_acceleration_mean.attrs["units"] == "mm yr-2"
    assert bool(cube.covered.sel(site="san_marco")) and float(cube.coverage.sel(site="san_marco")) == 1.0
    # covered, but no point passes the filter: zero points, unknown velocity
    noisy = cube.sel(site="noisy_corner").isel(time=0)
    assert bool(cube.covered.sel(site="noisy_corner")) and int(noisy.egms_points) == 0
    assert np.isnan(noisy.ground_velocity_mean)
    # outside every file: not covered, distinct from no data
    assert not bool(cube.covered.sel(site="bath")) and float(cube.coverage.sel(site="bath")) == 0.0
    assert np.isnan(cube.egms_points.sel(site="bath")).all()
    assert (
        cube.attrs["synthetic"] == "false"
        and "Copernicus Land Monitoring Service" in cube.attrs["attribution"]
    )


def test_two_releases_give_two_time_steps(egms_dir, tmp_path):
    source, _ = egms(tmp_path, egms_dir)
    cube = source.fetch(SiteSet([SAN_MARCO]), date(2022, 1, 1), date(2024, 12, 31))
    assert [str(t)[:10] for t in cube.time.values] == ["2022-12-27", "2023-12-26"]
    old, new = cube.ground_velocity_mean.sel(site="san_marco").values
    assert new - old == pytest.approx(1.0, abs=1e-4)


def test_l3_vertical_from_easting_northing_only(egms_dir, tmp_path):
    source, _ = egms(tmp_path, egms_dir, egms_level="L3")
    cube = source.fetch(SiteSet([SAN_MARCO_BUF, BATH]), date(2023, 1, 1), date(2024, 12, 31))
    assert cube.attrs["product"] == "EGMS L3 (vertical)"
    got = cube.sel(site="san_marco_buffered").isel(time=0)
    assert float(got.ground_velocity_mean) == pytest.approx(-5.0)  # the east-west (_E_) file is ignored
    assert int(got.egms_points) >= 9
    assert json.loads(cube.attrs["request"])["files"] == {
        "2019_2023_v1": ["EGMS_L3_E44N24_100km_U_2019_2023_1.csv"]
    }
    assert not bool(cube.covered.sel(site="bath"))


def test_file_without_lon_lat_uses_easting_northing(tmp_path):
    folder = tmp_path / "egms"
    folder.mkdir()
    frame = l2_frame(date(2023, 12, 26)).drop(columns=["latitude", "longitude"])
    frame.to_csv(folder / "EGMS_L2a_088_0282_IW2_VV_2019_2023_1.csv", index=False)
    source, _ = egms(tmp_path, folder)
    cube = source.fetch(SiteSet([SAN_MARCO]), date(2023, 1, 1), date(2024, 12, 31))
    expected = _expected(l2_frame(date(2023, 12, 26)), SAN_MARCO)
    got = cube.sel(site="san_marco").isel(time=0)
    assert abs(int(got.egms_points) - len(expected)) <= 2  # box edges differ slightly once projected
    assert float(got.ground_velocity_mean) == pytest.approx(expected.mean(), abs=0.01)


def test_quality_threshold_is_a_setting(egms_dir, tmp_path):
    source, _ = egms(tmp_path, egms_dir, egms_max_velocity_std=5.0)
    cube = source.fetch(SiteSet([SAN_MARCO]), date(2023, 1, 1), date(2024, 12, 31))
    assert float(cube.ground_velocity_max.sel(site="san_marco").max()) == pytest.approx(40.0)


def test_period_without_release_is_empty(egms_dir, tmp_path):
    source, _ = egms(tmp_path, egms_dir)
    cube = source.fetch(SiteSet([SAN_MARCO]), date(2024, 1, 1), date(2024, 12, 31))
    assert cube.sizes["time"] == 0 and list(cube.site.values) == ["san_marco"]


def test_remote_mode_does_not_exist(tmp_path):
    from monitor.sources import egms as module

    settings = make_settings(tmp_path, egms_mode="remote")
    with pytest.raises(SourceNotAvailableError):
        module.build(settings, "remote")
    assert module.check(settings)["reachable"] is None
