"""Shared by the end-to-end tests that run `heritage-monitor` as an operator does, against a fake of the
CDS/ADS/EWDS protocol on 127.0.0.1: the fake server, the CLI's environment with the sites imported, and
helpers to run the CLI and read the database.

A module using `fake` and `env` says what the fake answers (fixture `cds_responder`), which settings it
adds to the environment (`remote_settings`) and which square sites it imports (`site_boxes`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.integration.sources.fake_cds import FakeDataStore

CLI = [sys.executable, "-m", "monitor.cli"]
#: A site's bounding box: west, south, east, north (degrees, EPSG:4326).
Box = tuple[float, float, float, float]


@pytest.fixture
def fake(cds_responder: Callable[[str, dict[str, Any]], bytes]) -> Iterator[FakeDataStore]:
    """The fake data store on 127.0.0.1, answering every retrieval with the module's `cds_responder`."""
    store = FakeDataStore(responder=cds_responder)
    yield store
    store.close()


def _sites_geojson(boxes: Mapping[str, Box]) -> dict:
    """A FeatureCollection of one rectangular limestone site per box."""
    features = []
    for site_id, (west, south, east, north) in boxes.items():
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        features.append(
            {
                "type": "Feature",
                "id": site_id,
                "properties": {"name": site_id, "materials": ["limestone"]},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


#: Data-store clients that give up quickly: the fakes answer at once or never.
QUICK_RETRIES = {"HM_CDS_RETRY_MAX": "2", "HM_CDS_SLEEP_MAX": "0.05", "HM_CDS_TIMEOUT_SECONDS": "5"}


def base_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The CLI's environment without any inherited HM_*, CDSAPI_* or SH_* variable: a data dir and database
    of the test's own, no proxy for 127.0.0.1 and no ~/.cdsapirc."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HM_", "CDSAPI", "SH_"))}
    e.update(
        HM_DATA_DIR=str(tmp_path / "data"),
        HM_DATABASE_URL=database_url,
        COLUMNS="200",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        CDSAPI_RC=str(tmp_path / "no-rc"),
    )
    return e


@pytest.fixture
def env(
    tmp_path: Path,
    database_url: str,
    fake: FakeDataStore,
    remote_settings: Mapping[str, str],
    site_boxes: Mapping[str, Box],
) -> dict[str, str]:
    """The CLI's environment as an operator sets it: no inherited HM_* or CDSAPI_* variables, the CDS on
    the fake with quick retries, the module's `remote_settings`, and its `site_boxes` imported as sites."""
    e = base_env(tmp_path, database_url) | QUICK_RETRIES
    e.update(HM_CDS_URL=fake.url, HM_CDS_KEY=fake.token)
    e.update(remote_settings)
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps(_sites_geojson(site_boxes)))
    subprocess.run([*CLI, "sites", "import", str(path)], env=e, check=True, capture_output=True, timeout=300)
    return e


def cli(env: Mapping[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `heritage-monitor ARGS` in `env`, with `extra` variables on top; its output as text."""
    return subprocess.run([*CLI, *args], env={**env, **extra}, capture_output=True, text=True, timeout=600)


def stored(url: str, sql: str) -> list:
    """The rows of a query on the database at `url` (a fresh engine: the CLI wrote in another process)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    engine.dispose()
    return rows
