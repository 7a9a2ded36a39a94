"""The climate-projections source: CDS requests (through cdsapi against the fake store), rotated-pole and
regular-grid extraction, calendars, the historical/scenario splice, huss → hurs, local files, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cftime
import numpy as np
import pytest
import shapely
import xarray as xr

from monitor.sources.base import SourceAuthError, SourceNotAvailableError, SourceRequestError
from monitor.sources.projections import (
    LocalProjections,
    ProjectionRun,
    RemoteProjections,
    make_projection_source,
)
from sites import Site, SiteSet
from tests.integration.sources import projection_files as pf
from tests.integration.sources.conftest import cache_files, remote_settings

CORDEX = "projections-cordex-domains-single-levels"
RUN = ProjectionRun("cordex", "mpi_m_mpi_esm_lr/smhi_rca4", "rcp_4_5")


def _site(site_id: str, j: int, i: int, half: float = 0.01) -> Site:
    """A small square site centred on cell (rlat j, rlon i) of the test grid."""
    lon, lat = pf.cell_centre(j, i)
    return Site(
        id=site_id, name=site_id, geometry=shapely.box(lon - half, lat - half, lon + half, lat + half)
    )


def _cordex_responder(calendar: str = "360_day"):
    """Serves, for each request, a ZIP of the CORDEX files of the asked variable and 5-year chunk."""

    def respond(dataset: str, inputs: dict[str, Any]) -> bytes:
        assert dataset == CORDEX
        var = pf.CDS_NAMES[inputs["variable"][0]]
        exp = pf.esgf_experiment(inputs["experiment"])
        ds = pf.cordex_dataset(
            var, exp, int(inputs["start_year"][0]), int(inputs["end_year"][0]), calendar=calendar
        )
        return pf.zip_bytes({pf.cordex_name(ds): pf.to_bytes(ds)})

    return respond


def _settings(tmp_path: Path, store, **extra):
    return remote_settings(
        tmp_path,
        store,
        projections_mode="remote",
        projections_dataset=extra.pop("dataset", "cordex"),
        projections_models=extra.pop("models", "mpi_m_mpi_esm_lr/smhi_rca4"),
        projections_scenarios=extra.pop("scenarios", "rcp_4_5"),
        **extra,
    )


def _cell(
    var: str, exp: str, first: int, last: int, j: int, i: int, calendar: str = "360_day"
) -> xr.DataArray:
    ds = pf.cordex_dataset(var, exp, first, last, calendar=calendar)
    return ds[var].isel(rlat=j, rlon=i)


def test_remote_cordex_requests_extraction_splice_and_cache(tmp_path, fake_store):
    store = fake_store(_cordex_responder())
    settings = _settings(tmp_path, store)
    source = make_projection_source(settings)
    assert isinstance(source, RemoteProjections)
    assert source.runs() == [RUN]
    sites = SiteSet([_site("a", 1, 2), _site("b", 3, 5)])

    cube = source.fetch(sites, RUN, 2004, 2007)

    assert store.problems == []
    submitted = store.submitted()
    assert {d for d, _ in submitted} == {CORDEX}
    expected = []
    for exp, start, end in (("historical", 2001, 2005), ("rcp_4_5", 2006, 2010)):
        for variable in (
            "2m_air_temperature",
            "minimum_2m_temperature_in_the_last_24_hours",
            "maximum_2m_temperature_in_the_last_24_hours",
            "mean_precipitation_flux",
            "2m_relative_humidity",
        ):
            expected.append(
                {
                    "domain": "europe",
                    "experiment": exp,
                    "horizontal_resolution": "0_11_degree_x_0_11_degree",
                    "temporal_resolution": "daily_mean",
                    "variable": [variable],
                    "gcm_model": "mpi_m_mpi_esm_lr",
                    "rcm_model": "smhi_rca4",
                    "ensemble_member": "r1i1p1",
                    "start_year": [str(start)],
                    "end_year": [str(end)],
                }
            )
    key = lambda r: (r["experiment"], r["variable"][0])  # noqa: E731
    assert sorted((i for _, i in submitted), key=key) == sorted(expected, key=key)

    # the contract cube
    assert cube["tas"].dims == ("site", "time")
    assert list(cube["site"].values) == ["a", "b"]
    assert set(cube.data_vars) == {"tas", "tasmin", "tasmax", "pr", "hurs"}
    times = cube["time"].values
    assert all(isinstance(t, cftime.Datetime360Day) for t in times)
    assert cube.sizes["time"] == 4 * 360 and (times[0].year, times[-1].year) == (2004, 2007)
    assert all(t.hour == 0 for t in times)
    a = cube.attrs
    assert (a["source"], a["dataset"], a["model"], a["scenario"], a["member"]) == (
        "projections",
        "cordex",
        RUN.model,
        "rcp_4_5",
        "r1i1p1",
    )
    assert a["calendar"] == "360_day" and a["product"] == CORDEX and a["synthetic"] is False
    assert a["splice"] == "historical 2004–2005 + rcp_4_5 2006–2007"
    assert "Generated using Copernicus Climate Change Service information" in a["attribution"]
    assert "Working Group on Regional Climate" in a["attribution"] and "smhi_rca4" in a["attribution"]
    assert a["product_version"] == "v1a"
    assert cube["tas"].attrs["units"] == "degC" and cube["pr"].attrs["units"] == "mm d-1"

    # values: those of the cell each site lies in, historical years from the historical run
    for site, (j, i) in (("a", (1, 2)), ("b", (3, 5))):
        hist = _cell("tas", "historical", 2001, 2005, j, i)
        rcp = _cell("tas", "rcp45", 2006, 2010, j, i)
        want = np.concatenate([hist.values[3 * 360 :], rcp.values[: 2 * 360]]) - 273.15
        np.testing.assert_allclose(cube["tas"].sel(site=site).values, want, atol=1e-4)
        pr = _cell("pr", "rcp45", 2006, 2010, j, i).values[: 2 * 360] * 86400.0
        np.testing.assert_allclose(cube["pr"].sel(site=site).values[2 * 360 :], pr, rtol=1e-5)
    assert cube["tas"].sel(site="a").values[2 * 360 - 1] != cube["tas"].sel(site="b").values[2 * 360 - 1]

    # other sites, same chunks: everything from the cache, no new request
    posts = len(store.submitted())
    n_cached = len(cache_files(settings))
    other = make_projection_source(settings).fetch(SiteSet([_site("c", 0, 0)]), RUN, 2005, 2006)
    assert len(store.submitted()) == posts and len(cache_files(settings)) == n_cached
    want_c = _cell("tasmax", "rcp45", 2006, 2010, 0, 0).values[:360] - 273.15
    np.testing.assert_allclose(other["tasmax"].sel(site="c").values[360:], want_c, atol=1e-4)


def test_remote_huss_converted_to_hurs_when_hurs_is_not_offered(tmp_path, fake_store):
    def refuse(dataset: str, inputs: dict[str, Any]) -> str | None:
        if inputs.get("variable") == ["2m_relative_humidity"]:
            return "no data for this combination of gcm_model, rcm_model and variable"
        return None

    store = fake_store(_cordex_responder(), refuse=refuse)
    source = make_projection_source(_settings(tmp_path, store))
    cube = source.fetch(SiteSet([_site("a", 2, 3)]), RUN, 2007, 2007)

    variables = [i["variable"][0] for _, i in store.submitted()]
    assert "2m_surface_specific_humidity" in variables
    hurs = cube["hurs"].sel(site="a").values
    assert "specific humidity" in cube["hurs"].attrs["comment"]
    assert cube["hurs"].attrs["units"] == "%"
    # independent check: Magnus formula at the standard sea-level pressure
    t = _cell("tas", "rcp45", 2006, 2010, 2, 3).values[360:720] - 273.15
    q = _cell("huss", "rcp45", 2006, 2010, 2, 3).values[360:720]
    e = q * 101325.0 / (0.622 + 0.378 * q)
    es = 611.2 * np.exp(17.62 * t / (243.12 + t))
    np.testing.assert_allclose(hurs, np.clip(100 * e / es, 0, 100), atol=1.5)


def test_remote_cmip6_request_regular_grid_and_standard_calendar(tmp_path, fake_store):
    def respond(dataset: str, inputs: dict[str, Any]) -> bytes:
        var = pf.CDS_NAMES[inputs["variable"]]
        years = [int(y) for y in inputs["year"]]
        ds = pf.cmip6_dataset(var, pf.esgf_experiment(inputs["experiment"]), min(years), max(years))
        return pf.zip_bytes({f"{var}_day_MPI-ESM1-2-LR_x.nc": pf.to_bytes(ds), "provenance.json": b"{}"})

    store = fake_store(respond)
    settings = _settings(tmp_path, store, dataset="cmip6", models="mpi_esm1_2_lr", scenarios="ssp5_8_5")
    source = make_projection_source(settings)
    run = source.runs()[0]
    assert run == ProjectionRun("cmip6", "mpi_esm1_2_lr", "ssp5_8_5", "r1i1p1f1")
    rome = Site(id="rome", name="Rome", geometry=shapely.box(12.45, 41.88, 12.50, 41.92))
    cube = source.fetch(SiteSet([rome]), run, 2014, 2015)

    reqs = [i for _, i in store.submitted()]
    assert {(r["experiment"], tuple(r["year"])) for r in reqs} == {
        ("historical", ("2011", "2012", "2013", "2014")),
        ("ssp5_8_5", ("2015",)),
    }
    first = next(
        r for r in reqs if r["variable"] == "near_surface_air_temperature" and r["experiment"] == "historical"
    )
    assert first == {
        "temporal_resolution": "daily",
        "experiment": "historical",
        "variable": "near_surface_air_temperature",
        "model": "mpi_esm1_2_lr",
        "year": ["2011", "2012", "2013", "2014"],
        "month": [f"{m:02d}" for m in range(1, 13)],
        "day": [f"{d:02d}" for d in range(1, 32)],
        "area": [45.0, 10.0, 40.0, 15.0],  # Rome ± 1°, snapped outwards to 5°
    }
    assert (
        cube.attrs["calendar"] == "standard"
        and cube.attrs["splice"] == "historical 2014–2014 + ssp5_8_5 2015–2015"
    )
    assert "CMIP6" in cube.attrs["attribution"]
    assert cube.sizes["time"] == 365 * 2
    assert all(isinstance(t, cftime.DatetimeGregorian) for t in cube["time"].values)
    # Rome lies in the cell centred at 41.5 N, 12.5 E
    ref = pf.cmip6_dataset("tas", "ssp585", 2015, 2015)["tas"].sel(lat=41.5, lon=12.5).values - 273.15
    np.testing.assert_allclose(cube["tas"].sel(site="rome").values[365:], ref, atol=1e-4)


def _write_local(folder: Path, calendar: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for exp, first, last in (("historical", 2001, 2005), ("rcp85", 2006, 2010)):
        for var in ("tas", "tasmin", "tasmax", "pr", "huss"):
            ds = pf.cordex_dataset(var, exp, first, last, calendar=calendar)
            (folder / pf.cordex_name(ds)).write_bytes(pf.to_bytes(ds))


def test_local_noleap_files_discovered_and_spliced(tmp_path):
    from monitor.settings import Settings

    folder = tmp_path / "cordex"
    _write_local(folder, "noleap")
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", projections_mode="local", projections_path=folder
    )
    source = make_projection_source(settings)
    assert isinstance(source, LocalProjections)
    run = ProjectionRun("cordex", "mpi_m_mpi_esm_lr/smhi_rca4", "rcp_8_5")
    assert source.runs() == [run]
    cube = source.fetch(SiteSet([_site("a", 4, 6)]), run, 2004, 2007)

    times = cube["time"].values
    assert all(isinstance(t, cftime.DatetimeNoLeap) for t in times) and cube.attrs["calendar"] == "noleap"
    assert cube.sizes["time"] == 4 * 365 and not any(t.month == 2 and t.day == 29 for t in times)
    assert cube.attrs["splice"] == "historical 2004–2005 + rcp_8_5 2006–2007"
    tas = cube["tas"].sel(site="a")
    hist = _cell("tas", "historical", 2001, 2005, 4, 6, "noleap").values - 273.15
    rcp = _cell("tas", "rcp85", 2006, 2010, 4, 6, "noleap").values - 273.15
    np.testing.assert_allclose(tas.values[:730], hist[3 * 365 :], atol=1e-4)
    np.testing.assert_allclose(tas.values[730:], rcp[: 2 * 365], atol=1e-4)
    assert "specific humidity" in cube["hurs"].attrs["comment"]  # no hurs file: derived from huss
    assert "tas_EUR-11_MPI-M-MPI-ESM-LR_rcp85" in cube.attrs["files"]


def test_local_zip_without_esgf_names_uses_global_attributes(tmp_path):
    from monitor.settings import Settings

    folder = tmp_path / "downloads"
    folder.mkdir()
    members = {}
    for var in ("tas", "pr"):
        ds = pf.cordex_dataset(var, "rcp45", 2021, 2022, calendar="360_day")
        members[f"download_{var}.nc"] = pf.to_bytes(ds)
    (folder / "cds-download.zip").write_bytes(pf.zip_bytes(members))
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", projections_mode="local", projections_path=folder
    )
    source = LocalProjections(settings)
    facts = {
        (e.member_name, e.facts.variable, e.facts.experiment, e.facts.first_year) for e in source.catalogue()
    }
    assert facts == {("download_tas.nc", "tas", "rcp_4_5", 2021), ("download_pr.nc", "pr", "rcp_4_5", 2021)}
    run = source.runs()[0]
    assert run.model == "mpi_m_mpi_esm_lr/smhi_rca4" and run.scenario == "rcp_4_5"
    cube = source.fetch(SiteSet([_site("a", 0, 1)]), run, 2021, 2022)
    assert set(cube.data_vars) == {"tas", "pr"} and cube.attrs["splice"] == "rcp_4_5 2021–2022"


def test_errors(tmp_path, fake_store):
    from monitor.settings import Settings

    store = fake_store(_cordex_responder())
    sites = SiteSet([_site("a", 1, 1)])
    # no token
    no_key = _settings(tmp_path, store, cds_key=None)
    with pytest.raises(SourceAuthError, match="HM_CDS_KEY"):
        make_projection_source(no_key).fetch(sites, RUN, 2006, 2006)
    # licence not accepted
    licence_store = fake_store(_cordex_responder(), mode="licence")
    with pytest.raises(SourceAuthError, match="licence"):
        make_projection_source(_settings(tmp_path / "l", licence_store)).fetch(sites, RUN, 2006, 2006)
    # a model the CDS does not offer: refused before any job is submitted
    bad = ProjectionRun("cordex", "mpi_m_mpi_esm_lr/no_such_rcm", "rcp_4_5")
    with pytest.raises(SourceRequestError, match="no_such_rcm"):
        make_projection_source(_settings(tmp_path / "m", store)).fetch(sites, bad, 2006, 2006)
    assert store.submitted() == []
    # unknown scenario in the settings
    with pytest.raises(SourceRequestError, match="rcp_9_9"):
        make_projection_source(_settings(tmp_path, store, scenarios="rcp_9_9"))
    # local mode: path unset, missing, and a model without files
    with pytest.raises(SourceNotAvailableError, match="HM_PROJECTIONS_PATH"):
        LocalProjections(Settings(_env_file=None, projections_mode="local")).runs()
    with pytest.raises(SourceNotAvailableError, match="does not exist"):
        LocalProjections(Settings(_env_file=None, projections_path=tmp_path / "nope")).runs()
    folder = tmp_path / "files"
    _write_local(folder, "360_day")
    local = LocalProjections(Settings(_env_file=None, projections_path=folder))
    with pytest.raises(SourceRequestError, match="no local files of model"):
        local.fetch(sites, ProjectionRun("cordex", "ichec_ec_earth/knmi_racmo22e", "rcp_8_5"), 2006, 2006)
    with pytest.raises(SourceRequestError, match="rcp_2_6"):
        local.fetch(sites, ProjectionRun("cordex", "mpi_m_mpi_esm_lr/smhi_rca4", "rcp_2_6"), 2006, 2006)


def test_demo_mode_is_the_synthetic_source(tmp_path):
    from monitor.settings import Settings
    from monitor.sources.synthetic_projections import SyntheticProjections

    source = make_projection_source(Settings(_env_file=None, data_dir=tmp_path, projections_mode="demo"))
    assert isinstance(source, SyntheticProjections) and source.mode == "demo"


def test_polygon_over_several_rotated_cells_takes_their_area_weighted_mean():
    from monitor.sources.cordex import reduce_model_grid

    ds = pf.cordex_dataset("tas", "rcp45", 2006, 2006)
    # a polygon drawn in rotated coordinates over the whole of cells (2, 1) and (2, 2) and half of (2, 3)
    r0 = pf.RLON0 + pf.STEP * 0.5
    ring = shapely.box(r0, pf.RLAT0 + pf.STEP * 1.5, r0 + pf.STEP * 2.5, pf.RLAT0 + pf.STEP * 2.5)
    ring = shapely.segmentize(ring, pf.STEP / 20)
    xy = shapely.get_coordinates(ring)
    lon, lat = pf.rotated_to_lonlat(xy[:, 0], xy[:, 1])
    site = Site(id="wide", name="wide", geometry=shapely.Polygon(np.column_stack([lon, lat])))
    out = reduce_model_grid(ds, SiteSet([site, _site("small", 0, 0)]), ["tas"])

    cells = [ds["tas"].isel(rlat=2, rlon=i).values for i in (1, 2, 3)]
    want = (cells[0] + cells[1] + 0.5 * cells[2]) / 2.5
    np.testing.assert_allclose(out["tas"].sel(site="wide").values, want, rtol=1e-5)
    assert list(out["extraction"].values) == ["mean", "mean"]
    np.testing.assert_allclose(out["tas"].sel(site="small").values, ds["tas"].isel(rlat=0, rlon=0).values)
