"""A small API world without the pipeline: three sites, hand-written indicator values and variables."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.store.variables import VariableStore
from tests.conftest import make_site

MONTHS = pd.date_range("2024-01-01", "2025-12-01", freq="MS").date
YEARS = [date(y, 1, 1) for y in range(2020, 2026)]


def _records(site: str, indicator: str, periods, freq: str, values, levels, source: str) -> pd.DataFrame:
    n = len(periods)
    return pd.DataFrame(
        {
            "site_id": site,
            "indicator_id": indicator,
            "period_start": list(periods),
            "freq": freq,
            "value": list(values),
            "level": list(levels),
            "material": [None] * n,
            "indicator_version": "1.0.0",
            "source": source,
            "product": "synthetic stand-in for reanalysis-era5-land",
            "product_version": "synthetic-1",
            "synthetic": True,
            "coverage": 1.0,
        }
    )


def seed(store, settings) -> None:
    store.upsert_sites(
        [
            make_site(
                "athens", 23.7257, 37.9715, materials=["marble"], heritage_type="monument", country="GR"
            ),
            make_site("krakow", 19.9383, 50.0614, materials=["brick"], heritage_type="historic centre"),
            make_site("bergen", 5.3242, 60.3975, materials=["timber"], heritage_type="monument"),
        ]
    )
    frames = []
    for k, site in enumerate(("athens", "krakow", "bergen")):
        hot = [(i % 12) * 2 + k for i in range(len(MONTHS))]
        frames.append(
            _records(site, "hot_days", MONTHS, "MS", hot, [min(4, v // 6) for v in hot], "era5_land")
        )
        ft = [10.0 + 5 * i + k for i in range(len(YEARS))]
        frames.append(_records(site, "freeze_thaw_cycles", YEARS, "YS", ft, [1] * len(YEARS), "era5_land"))
    records = pd.concat(frames, ignore_index=True)
    with store.session.begin() as session:
        store.upsert_values(session, records)
    days = pd.date_range("2025-01-01", "2025-03-31", freq="D")
    sites = np.array(["athens", "krakow", "bergen"], dtype=object)
    cube = xr.Dataset(
        {
            "tas": (("site", "time"), np.tile(np.linspace(5, 15, len(days)), (3, 1)), {"units": "degC"}),
            "pr": (("site", "time"), np.ones((3, len(days))), {"units": "mm d-1"}),
        },
        coords={"site": sites, "time": days},
        attrs={
            "product": "synthetic stand-in for reanalysis-era5-land",
            "product_version": "synthetic-1",
            "synthetic": "true",
            "attribution": "SYNTHETIC demo data, not Copernicus data.",
        },
    )
    VariableStore(settings.data_dir / "variables").write("era5_land", cube)


def auth(key) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.secret}"}


@pytest.fixture
def world(settings, store):
    seed(store, settings)
    keys = {
        "admin": store.create_key("a", "admin"),
        "manager": store.create_key("m", "manager", ["athens", "pont_du_gard"]),
        "other_manager": store.create_key("o", "manager", ["bergen"]),
        "reader": store.create_key("r", "reader"),
    }
    with TestClient(create_app(settings, store)) as client:
        yield SimpleNamespace(client=client, store=store, keys=keys, settings=settings)


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
