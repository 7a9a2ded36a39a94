"""Indicator inputs stream out of core: the lazy read of the variable store equals the eager one, builds
without reading a row and reads each block's sites only; the pipeline streaming its inputs (forced by a
zero memory budget, or by a Dask cluster) stores exactly the values of the eager pipeline."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr

from monitor.store.variables import VariableStore

distributed = pytest.importorskip("distributed")

SITES = [f"s{i:02d}" for i in range(11)]


def _cube(sites: list[str], first: str, n_days: int, version: str, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    tas = rng.normal(8, 7, (len(sites), n_days))
    tas[rng.random(tas.shape) < 0.1] = np.nan
    pr = rng.gamma(0.6, 5, (len(sites), n_days))
    return xr.Dataset(
        {
            "tas": (("site", "time"), tas, {"units": "degC"}),
            "pr": (("site", "time"), pr, {"units": "mm/d"}),
        },
        coords={"site": sites, "time": pd.date_range(first, periods=n_days, freq="D")},
        attrs={"product": "demo product", "attribution": "demo", "product_version": version},
    )


@pytest.fixture
def variables(tmp_path) -> VariableStore:
    """Two years and a half of eleven sites, a later version for a few sites over March 2021, and a
    site (s10) that has rows only in 2021: the same shape as a store grown over several passes."""
    store = VariableStore(tmp_path / "variables")
    store.write("era5_land", _cube(SITES[:10], "2019-10-01", 550, "v1", seed=1))
    store.write("era5_land", _cube(SITES[2:5], "2021-03-01", 31, "v2", seed=2))
    store.write("era5_land", _cube(SITES[10:], "2021-01-01", 120, "v1", seed=3))
    return store


WINDOWS = {
    "everything": (None, None),
    "inside one year": (date(2020, 2, 10), date(2020, 5, 20)),
    "across years": (date(2020, 11, 1), date(2021, 3, 10)),
}
SELECTIONS = {
    "every site": SITES,
    "with absent sites": ["s07", "nowhere", "s01", "s10", "also-absent"],
    "absent only": ["nowhere"],
}


@pytest.mark.parametrize("window", WINDOWS.values(), ids=WINDOWS.keys())
@pytest.mark.parametrize("selection", SELECTIONS.values(), ids=SELECTIONS.keys())
@pytest.mark.parametrize("sites_per_chunk", [1, 3, 100])
def test_the_lazy_read_equals_the_eager_read(variables, window, selection, sites_per_chunk):
    start, end = window
    eager = variables.read("era5_land", selection, start, end)
    lazy = variables.read("era5_land", selection, start, end, sites_per_chunk=sites_per_chunk)
    for name in ("tas", "pr"):
        assert lazy[name].chunks is not None
        assert lazy[name].chunks[0] == tuple(
            min(sites_per_chunk, len(selection) - i) for i in range(0, len(selection), sites_per_chunk)
        )
        assert len(lazy[name].chunks[1]) == 1  # time in one block: the kernels reduce whole series
    xr.testing.assert_identical(lazy.compute(), eager)
    assert eager.sizes["time"] > 0 and eager.attrs["source"] == "era5_land"
    assert eager["tas"].attrs == {"units": "degC"}


def test_the_lazy_read_of_every_site_and_of_chosen_variables_equals_the_eager_one(variables):
    window = (date(2020, 12, 20), date(2021, 1, 10))
    eager = variables.read("era5_land", None, *window, variables=["pr"])
    lazy = variables.read("era5_land", None, *window, variables=["pr"], sites_per_chunk=4)
    assert list(eager.data_vars) == ["pr"]
    assert list(eager.site.values) == SITES  # s10 has rows in the window
    xr.testing.assert_identical(lazy.compute(), eager)


def test_the_time_axis_and_product_version_come_from_the_files(variables):
    """Both reads take the days and versions the files record, whichever sites are selected: the eager
    one equals today's read where the sites cover the file's days, and never depends on the mode."""
    everything = variables.read("era5_land")
    assert everything.attrs["product_version"] == "v1,v2"
    days = pd.DatetimeIndex(everything.time.values)
    assert days[0] == pd.Timestamp("2019-10-01") and days[-1] == pd.Timestamp("2021-04-30")
    assert len(days) == days.normalize().nunique() == (days[-1] - days[0]).days + 1

    # s10 has rows in 2021 only: the 2020 days of the other sites are missing values for it
    alone = variables.read("era5_land", ["s10"], date(2020, 12, 1), date(2021, 1, 31))
    assert alone.sizes["time"] == 62
    assert alone["tas"].isel(time=slice(0, 31)).isnull().all()
    assert alone["pr"].isel(time=slice(31, None)).notnull().all()

    # the version of March 2021 belongs to windows that hold those days, not to the others
    assert (
        variables.read("era5_land", ["s00"], date(2021, 1, 1), date(2021, 2, 28)).attrs["product_version"]
        == "v1"
    )
    lazy = variables.read("era5_land", ["s00"], date(2021, 3, 5), date(2021, 3, 6), sites_per_chunk=1)
    assert lazy.attrs["product_version"] == "v1,v2"

    # the later version replaced the values it holds (a missing one keeps the old), for its sites only
    march = variables.read("era5_land", SITES, date(2021, 3, 1), date(2021, 3, 31))
    written = _cube(SITES[2:5], "2021-03-01", 31, "v2", seed=2)["tas"].values
    np.testing.assert_array_equal(
        march["tas"].sel(site=SITES[2:5]).values[~np.isnan(written)], written[~np.isnan(written)]
    )


def test_files_written_before_the_days_were_recorded_read_their_time_column(variables, tmp_path):
    before = variables.read("era5_land", SITES[:4], date(2020, 6, 1), date(2021, 2, 1))
    for path in (tmp_path / "variables" / "source=era5_land").glob("year=*.parquet"):
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"heritage"])
        assert "time_runs" in meta
        del meta["time_runs"]
        pq.write_table(table.replace_schema_metadata({b"heritage": json.dumps(meta).encode()}), path)
    eager = variables.read("era5_land", SITES[:4], date(2020, 6, 1), date(2021, 2, 1))
    lazy = variables.read("era5_land", SITES[:4], date(2020, 6, 1), date(2021, 2, 1), sites_per_chunk=3)
    xr.testing.assert_identical(eager, before)
    xr.testing.assert_identical(lazy.compute(), before)


@pytest.fixture
def read_calls(monkeypatch) -> list[dict]:
    """The keyword arguments of every `pyarrow.parquet.read_table` call (the store reads rows only so)."""
    calls: list[dict] = []
    real = pq.read_table

    def counting(source, *args, **kwargs):
        calls.append({"source": str(source), **kwargs})
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", counting)
    return calls


def test_building_the_lazy_cube_reads_no_row_and_each_block_reads_its_sites_only(variables, read_calls):
    wanted = ["s03", "s09", "nowhere", "s00", "s10", "s05", "s01"]
    lazy = variables.read("era5_land", wanted, date(2020, 3, 1), date(2021, 6, 30), sites_per_chunk=3)
    assert variables.nbytes("era5_land", len(wanted), date(2020, 3, 1), date(2021, 6, 30)) == sum(
        v.nbytes for v in lazy.data_vars.values()
    )
    assert read_calls == []  # neither building the cube nor sizing it read a row

    lazy.compute(scheduler="sync")
    files = {c["source"] for c in read_calls}
    assert len(files) == 2  # the 2020 and 2021 files
    assert len(read_calls) == 3 * 2  # one read per block of sites and year file
    blocks = []
    for call in read_calls:
        sites = [value for column, op, value in call["filters"] if column == "site" and op == "in"]
        assert len(sites) == 1 and 1 <= len(sites[0]) <= 3
        assert set(call["columns"]) <= {"site", "time", "tas", "pr"}
        blocks.append(tuple(sites[0]))
    assert sorted(set(blocks)) == sorted({tuple(wanted[i : i + 3]) for i in range(0, len(wanted), 3)})


def test_the_store_tells_whether_sites_have_any_value_in_a_window(variables):
    assert variables.any_values("era5_land", ["nowhere", "s04"], date(2021, 3, 1), date(2021, 3, 2))
    assert variables.any_values("era5_land", ["s10"], date(2020, 12, 1), date(2021, 1, 1))
    assert not variables.any_values("era5_land", ["nowhere"])
    assert not variables.any_values("era5_land", [])
    assert not variables.any_values("era5_land", ["s10"], date(2020, 1, 1), date(2020, 12, 31))
    assert not variables.any_values("era5_land", SITES, date(2023, 1, 1), date(2023, 12, 31))
    assert not variables.any_values("era5_land", SITES, variables=["not_stored"])


def test_missing_and_nan_values_are_not_values(tmp_path):
    store = VariableStore(tmp_path / "variables")
    cube = _cube(["a", "b"], "2020-01-01", 10, "v1", seed=4)
    cube["tas"].loc[{"site": "a"}] = np.nan
    store.write("era5_land", cube)
    assert not store.any_values("era5_land", ["a"], variables=["tas"])
    assert store.any_values("era5_land", ["a"], variables=["tas", "pr"])
    assert store.any_values("era5_land", ["b"], variables=["tas"])
    # a NaN stored as a float value (not a null) is no value either
    path = next((tmp_path / "variables" / "source=era5_land").glob("*.parquet"))
    table = pq.read_table(path)
    tas = pa.array(table["tas"].to_numpy(zero_copy_only=False), type=pa.float64(), from_pandas=False)
    pq.write_table(table.set_column(table.schema.get_field_index("tas"), "tas", tas), path)
    assert pq.read_table(path)["tas"].null_count == 0
    assert not store.any_values("era5_land", ["a"], variables=["tas"])


def test_a_lazy_cube_is_computed_on_the_local_threaded_scheduler(variables):
    from monitor import compute

    eager = variables.read("era5_land", SITES)
    lazy = variables.read("era5_land", SITES, sites_per_chunk=4)
    for indicator_id in ("hot_days", "max_5day_precipitation"):
        result = compute.compute(indicator_id, lazy.rename(tas="tasmax"), None)
        assert result.chunks is None  # an in-memory result, as the eager run's
        xr.testing.assert_identical(result, compute.compute(indicator_id, eager.rename(tas="tasmax"), None))
    assert not compute._CLIENTS  # no cluster was involved


# --- the pipeline -------------------------------------------------------------------------------------

STORED = ("site_id", "indicator_id", "period_start", "value", "level", "material", "product_version")


def _settings(root, **overrides):
    from monitor.settings import Settings

    return Settings(
        data_dir=root,
        database_url=f"sqlite:///{root}.db",
        demo_end=date(2026, 11, 15),
        demo_years=2,
        _env_file=None,
        **overrides,
    )


def _run(settings, monkeypatch, sources=None) -> tuple[dict[str, pd.DataFrame], list[bool]]:
    """A pass of the demo sources over three sites: the stored indicator and forecast values, and for
    each indicator computed from stored variables whether its input cube was lazy (burn severity reads
    only histograms of the pass's own fetch, which are never stored)."""
    import monitor.pipeline
    from monitor.compute import is_lazy
    from monitor.pipeline import Pipeline
    from monitor.store.db import make_engine, upgrade
    from monitor.store.forecasts import stored_forecast_values
    from monitor.store.repository import Store
    from tests.conftest import make_site

    lazy: list[bool] = []
    real = monitor.pipeline.compute

    def spy(indicator_id, cube, *args, **kwargs):
        if any(set(var.dims) == {"site", "time"} for var in cube.data_vars.values()):
            lazy.append(is_lazy(cube))
        return real(indicator_id, cube, *args, **kwargs)

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    store = Store(engine)
    store.upsert_sites(
        [
            make_site("athens", 23.7257, 37.9715, materials=["marble"]),
            make_site("krakow", 19.9383, 50.0614, materials=["brick", "limestone"]),
            make_site("venice", 12.3387, 45.4343, materials=["brick", "bronze"]),
        ]
    )
    with monkeypatch.context() as patch:
        patch.setattr(monitor.pipeline, "compute", spy)
        report = Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run(sources)
    assert not report.failed, report.results
    stored = {}
    with engine.connect() as conn:
        frame = pd.read_sql(f"SELECT {', '.join(STORED)} FROM indicator_values", conn)
        stored["indicator_values"] = frame.sort_values(list(STORED)).reset_index(drop=True)
    key = [*STORED, "valid_day"]
    frame = stored_forecast_values(store)[key]
    stored["forecast_values"] = frame.sort_values(key).reset_index(drop=True)
    engine.dispose()
    return stored, lazy


@pytest.fixture(scope="module")
def eager_values() -> dict[str, pd.DataFrame]:
    """The values of the pipeline reading its inputs into memory (the default budget is far above them)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("HM_DASK_SCHEDULER", raising=False)
        settings = _settings(Path(folder) / "data")
        assert settings.dask_scheduler is None and settings.stream_above_mb > 1
        values, lazy = _run(settings, monkeypatch)
    assert lazy and not any(lazy)
    assert len(values["indicator_values"]) > 1000 and len(values["forecast_values"]) > 10
    assert values["indicator_values"]["indicator_id"].nunique() >= 25  # every demo indicator
    return values


def _assert_same(values: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(values[table], frame, obj=table)


def test_the_pipeline_streaming_on_the_local_scheduler_stores_the_eager_values(
    eager_values, tmp_path, monkeypatch, read_calls
):
    monkeypatch.delenv("HM_DASK_SCHEDULER", raising=False)
    settings = _settings(tmp_path / "data", stream_above_mb=0, sites_per_chunk=1)
    values, lazy = _run(settings, monkeypatch)
    assert lazy and all(lazy)  # every indicator's inputs streamed
    _assert_same(values, eager_values)
    # rows were read one site at a time (unfiltered reads are the writes merging a year file)
    filtered = [c for c in read_calls if c.get("filters")]
    assert filtered
    for call in filtered:
        (sites,) = [value for column, op, value in call["filters"] if column == "site" and op == "in"]
        assert len(sites) == 1


def test_the_pipeline_streaming_on_a_cluster_stores_the_eager_values(tmp_path, monkeypatch):
    from monitor import compute

    # per-site coordinates (flood), `.values` in an indicator (fire), forecasts, two sources' inputs
    sources = ["era5_land", "cams_europe", "cems_fire", "glofas"]
    monkeypatch.delenv("HM_DASK_SCHEDULER", raising=False)
    expected, eager = _run(_settings(tmp_path / "eager"), monkeypatch, sources)
    assert eager and not any(eager)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        monkeypatch.setenv("HM_DASK_SCHEDULER", cluster.scheduler_address)
        settings = _settings(tmp_path / "data", sites_per_chunk=2)  # the default budget: the cluster decides
        before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        try:
            values, lazy = _run(settings, monkeypatch, sources)
            after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        finally:
            compute.close()  # before the cluster shuts down
    assert lazy and all(lazy)
    assert after > before  # the reading and the indicators ran as tasks on the cluster
    assert len(expected["indicator_values"]) > 1000 and len(expected["forecast_values"]) > 10
    _assert_same(values, expected)


def test_the_eager_read_gives_back_the_values_written_across_year_files(tmp_path):
    """The year files hold different sites (so different dictionaries of site ids): the read joins them
    into one cube with each value at its site and day, and NaN where a site has no row."""
    store = VariableStore(tmp_path / "variables")
    both_years = _cube(SITES[:4], "2020-12-20", 20, "v1", seed=5)
    second_only = _cube(["s09"], "2021-01-03", 5, "v1", seed=6)
    store.write("era5_land", both_years)
    store.write("era5_land", second_only)
    wanted = ["s09", "s02", "nowhere", "s00"]
    got = store.read("era5_land", wanted)
    expected = xr.merge([both_years, second_only]).reindex(site=wanted)
    assert got.site.values.tolist() == wanted
    np.testing.assert_array_equal(got.time.values, expected.time.values)
    for name in ("tas", "pr"):
        np.testing.assert_array_equal(got[name].values, expected[name].values)
