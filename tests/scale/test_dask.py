"""Indicators of a dask-chunked cube (over site) on a distributed LocalCluster equal the eager run, and the
pipeline with `HM_DASK_SCHEDULER` naming that cluster (which then streams its inputs from the variable
store, block by block of sites) stores the same values as the in-process run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import indicators
from monitor import compute

distributed = pytest.importorskip("distributed")

IDS = (
    "freeze_thaw_cycles",
    "wet_frost_days",
    "hot_days",
    "thermal_stress_days",
    "max_1day_precipitation",
    "max_5day_precipitation",
)


def _cube(n_sites: int = 20, n_days: int = 3 * 365) -> xr.Dataset:
    rng = np.random.default_rng(5)
    tasmin = rng.normal(5, 9, (n_sites, n_days))
    tasmin[rng.random(tasmin.shape) < 0.05] = np.nan
    pr = rng.gamma(0.5, 6, (n_sites, n_days))
    pr[rng.random(pr.shape) < 0.05] = np.nan
    return xr.Dataset(
        {
            "tasmin": (("site", "time"), tasmin, {"units": "degC"}),
            "tasmax": (("site", "time"), tasmin + rng.uniform(0, 22, tasmin.shape) + 10, {"units": "degC"}),
            "pr": (("site", "time"), pr, {"units": "mm/d"}),
        },
        coords={
            "site": [f"s{i}" for i in range(n_sites)],
            "time": pd.date_range("2001-01-01", periods=n_days, freq="D"),
        },
    )


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_chunked_cube_on_a_local_cluster_equals_the_eager_run(client):
    eager = _cube()
    lazy = eager.chunk({"site": 7, "time": 400})  # time is rechunked to one block by the kernels
    for indicator_id in IDS:
        expected = indicators.compute(indicator_id, eager)
        result = indicators.compute(indicator_id, lazy)
        assert result.chunks is not None, indicator_id  # still lazy: the work runs on the cluster
        computed = client.compute(result).result()
        xr.testing.assert_identical(computed, expected)


def _stored_values(settings_obj, sites) -> pd.DataFrame:
    from monitor.pipeline import Pipeline
    from monitor.store.db import make_engine, upgrade
    from monitor.store.repository import Store
    from monitor.store.tables import IndicatorValueRow
    from monitor.store.variables import VariableStore

    engine = make_engine(settings_obj.resolved_database_url)
    upgrade(engine)
    store = Store(engine)
    store.upsert_sites(sites)
    report = Pipeline(settings_obj, store, VariableStore(settings_obj.data_dir / "variables")).run(
        sources=["era5_land"]
    )
    assert not report.failed, report.results
    columns = ("site_id", "indicator_id", "period_start", "value", "level", "material")
    with engine.connect() as conn:
        frame = pd.read_sql(IndicatorValueRow.__table__.select(), conn)
    engine.dispose()
    return frame[list(columns)].sort_values(list(columns[:3])).reset_index(drop=True)


def test_the_pipeline_on_the_cluster_named_by_hm_dask_scheduler_stores_the_local_values(
    client, tmp_path, monkeypatch
):
    from datetime import date

    from monitor.settings import Settings
    from tests.conftest import make_site

    sites = [
        make_site("athens", 23.7257, 37.9715, materials=["marble"]),
        make_site("krakow", 19.9383, 50.0614, materials=["brick", "limestone"]),
        make_site("bergen", 5.3242, 60.3975, materials=["timber"]),
    ]

    def settings_for(name: str) -> Settings:
        return Settings(
            data_dir=tmp_path / name,
            database_url=f"sqlite:///{tmp_path / name}.db",
            demo_end=date(2026, 11, 15),
            demo_years=2,
            _env_file=None,
        )

    monkeypatch.delenv("HM_DASK_SCHEDULER", raising=False)
    local_settings = settings_for("local")
    assert local_settings.dask_scheduler is None
    local = _stored_values(local_settings, sites)

    address = client.scheduler.address
    monkeypatch.setenv("HM_DASK_SCHEDULER", address)
    cluster_settings = settings_for("cluster")
    assert cluster_settings.dask_scheduler == address
    before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    try:
        on_cluster = _stored_values(cluster_settings, sites)
        after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        assert after > before  # the indicators ran as tasks on the cluster
        assert address in compute._CLIENTS  # one client per process and address, reused by every indicator
    finally:
        compute.close()  # before the cluster fixture shuts the scheduler down
    assert not compute._CLIENTS

    assert len(local) > 100
    pd.testing.assert_frame_equal(on_cluster, local)


def test_site_chunks_balance_the_workers_and_stay_bounded():
    assert compute.site_chunk(10, 2) == 3
    assert compute.site_chunk(1_000_000, 2) == compute.MAX_SITES_PER_CHUNK
    assert compute.site_chunk(0, 4) == 1
    cube = _cube(n_sites=9)
    chunked = compute.chunk_sites(cube, 2)
    assert chunked.chunks["site"] == (3, 3, 3) and len(chunked.chunks["time"]) == 1
    # unset scheduler: computed in-process, no client
    xr.testing.assert_identical(compute.compute("hot_days", cube, None), indicators.compute("hot_days", cube))


def test_a_dask_backed_cube_streams_block_by_block_to_the_eager_values(client):
    """A lazy cube (as the variable store's streamed read gives) is computed one task per block of sites,
    on the cluster or the local threaded scheduler; per-site coordinates and attrs come out as eagerly."""
    eager = _cube(n_sites=9, n_days=12 * 365)
    rng = np.random.default_rng(8)
    eager["dis24"] = (("site", "time"), rng.gamma(2, 40, (9, 12 * 365)), {"units": "m3 s-1"})
    lazy = eager.chunk({"site": 4, "time": -1})
    address = client.scheduler.address
    try:
        for indicator_id in (*IDS, "flood_return_period"):
            expected = indicators.compute(indicator_id, eager)
            for scheduler in (None, address):
                result = compute.compute(indicator_id, lazy, scheduler)
                assert result.chunks is None, (indicator_id, scheduler)  # gathered into memory
                xr.testing.assert_identical(result, expected)
        assert "threshold_source" in expected.coords  # a per-site coordinate, known only once computed
    finally:
        compute.close()
