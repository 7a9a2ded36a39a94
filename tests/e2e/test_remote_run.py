"""`heritage-monitor run` against a fake of the CDS/ADS/EWDS protocol on 127.0.0.1, as an operator runs it."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli, stored
from tests.integration.sources import products

SITES = {  # two small sites inland (ERA5-Land is land-only)
    "site_a": (11.10, 46.05),
    "site_b": (11.40, 46.25),
}
RESPONDERS = {
    "reanalysis-era5-land": products.era5_land,
    "cams-europe-air-quality-reanalyses": products.cams_europe,
    "cems-fire-historical-v1": products.cems_fire,
}


def responder(dataset: str, inputs: dict[str, Any]) -> bytes:
    return RESPONDERS[dataset](inputs)


@pytest.fixture
def cds_responder() -> Callable[[str, dict[str, Any]], bytes]:
    """What the fake data stores answer: ERA5-Land, CAMS and CEMS fire products."""
    return responder


@pytest.fixture
def remote_settings(fake) -> dict[str, str]:
    """The ADS and EWDS on the same fake as the CDS, and the three sources in remote mode."""
    return {
        "HM_ADS_URL": fake.url,
        "HM_EWDS_URL": fake.url,
        "HM_ADS_KEY": fake.token,
        "HM_EWDS_KEY": fake.token,
        "HM_ERA5_LAND_MODE": "remote",
        "HM_CAMS_EUROPE_MODE": "remote",
        "HM_CEMS_FIRE_MODE": "remote",
    }


@pytest.fixture
def site_boxes() -> dict[str, tuple[float, float, float, float]]:
    """A 0.02° square north-east of each site's corner."""
    return {sid: (x, y, x + 0.02, y + 0.02) for sid, (x, y) in SITES.items()}


@pytest.mark.parametrize(
    ("source", "indicator", "dataset"),
    [
        ("era5_land", "max_1day_precipitation", "reanalysis-era5-land"),
        ("cams_europe", "pm10_exceedance_days", "cams-europe-air-quality-reanalyses"),
        ("cems_fire", "fire_danger_class", "cems-fire-historical-v1"),
    ],
)
def test_remote_run_stores_indicator_values_for_every_site(
    env, fake, database_url, source, indicator, dataset
):
    proc = cli(env, "run", "--source", source, "--start", "2024-01-01", "--end", "2024-03-31")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fake.problems == []
    sent = fake.submitted()
    assert sent and {d for d, _ in sent} == {dataset}
    assert all("area" in inputs and inputs.get("data_format") for _, inputs in sent)
    rows = stored(
        database_url,
        f"SELECT site_id, source, synthetic FROM indicator_values "
        f"WHERE indicator_id = '{indicator}' AND value IS NOT NULL",
    )
    assert {r[0] for r in rows} == set(SITES)
    assert {r[1] for r in rows} == {source} and not any(r[2] for r in rows)
    runs = stored(database_url, "SELECT source, status FROM runs")
    assert runs == [(source, "ok")]


@pytest.mark.parametrize("mode", ["error500", "error429", "truncate"])
def test_failing_service_leaves_store_unchanged_and_records_the_failure(env, fake, database_url, mode):
    assert (
        cli(env, "run", "--source", "era5_land", "--start", "2024-01-01", "--end", "2024-01-31").returncode
        == 0
    )
    before = stored(database_url, "SELECT site_id, indicator_id, period_start, value FROM indicator_values")
    marks = stored(database_url, "SELECT source, site_id, last_day FROM watermarks")
    fake.mode = mode
    proc = cli(env, "run", "--source", "era5_land", "--start", "2024-02-01", "--end", "2024-02-29")
    assert proc.returncode == 1
    assert (
        stored(database_url, "SELECT site_id, indicator_id, period_start, value FROM indicator_values")
        == before
    )
    assert stored(database_url, "SELECT source, site_id, last_day FROM watermarks") == marks
    failed = stored(database_url, "SELECT status, error FROM runs WHERE status != 'ok'")
    assert len(failed) == 1 and failed[0][0] == "failed" and "Unavailable" in failed[0][1]
    assert Path(env["HM_DATA_DIR"]).exists()
