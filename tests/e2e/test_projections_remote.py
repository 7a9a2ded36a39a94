"""`heritage-monitor projections` in remote mode against a fake of the CDS protocol serving small CORDEX
EUR-11 files (2 models × 2 scenarios, 3 sites, short periods), then the projections API on the same
database; a failing CDS exits non-zero with a clear message and leaves the stored projections as they were.
Both a 500 and a refused licence are shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.settings import Settings
from monitor.sources.projections import CORDEX_DATASET
from monitor.store.db import make_engine
from monitor.store.repository import Store
from tests.e2e.conftest import cli, stored
from tests.integration.sources import projection_files as pf

MODELS = ("mpi_m_mpi_esm_lr/smhi_rca4", "ichec_ec_earth/clmcom_clm_cclm4_8_17")
#: ESGF ids of the models' driving GCM and RCM (institute, model), as written in the files.
GCM = {"mpi_m_mpi_esm_lr": "MPI-M-MPI-ESM-LR", "ichec_ec_earth": "ICHEC-EC-EARTH"}
RCM = {"smhi_rca4": ("SMHI", "RCA4"), "clmcom_clm_cclm4_8_17": ("CLMcom", "CCLM4-8-17")}
#: The second model is wetter and warmer, so the ensemble has a spread.
WARMER = {"mpi_m_mpi_esm_lr": 0.0, "ichec_ec_earth": 0.8}
SITES = {"forum": (1, 2), "palatine": (3, 5), "aventine": (2, 3)}  # cells (rlat, rlon) of the test grid
INDICATOR = "max_1day_precipitation"


def responder(dataset: str, inputs: dict[str, Any]) -> bytes:
    """A ZIP of the CORDEX file of the asked model, experiment, variable and 5-year chunk."""
    assert dataset == CORDEX_DATASET
    var = pf.CDS_NAMES[inputs["variable"][0]]
    institute, rcm = RCM[inputs["rcm_model"]]
    ds = pf.cordex_dataset(
        var,
        pf.esgf_experiment(inputs["experiment"]),
        int(inputs["start_year"][0]),
        int(inputs["end_year"][0]),
        gcm=GCM[inputs["gcm_model"]],
        institute=institute,
        rcm=rcm,
    )
    shift = WARMER[inputs["gcm_model"]]
    if var in ("tas", "tasmin", "tasmax"):
        ds[var] = (ds[var] + shift).assign_attrs(ds[var].attrs)
    elif var == "pr":
        ds[var] = (ds[var] * (1 + shift)).assign_attrs(ds[var].attrs)
    return pf.zip_bytes({pf.cordex_name(ds): pf.to_bytes(ds)})


@pytest.fixture
def cds_responder() -> Callable[[str, dict[str, Any]], bytes]:
    """What the fake CDS answers: CORDEX files."""
    return responder


@pytest.fixture
def remote_settings() -> dict[str, str]:
    """Remote CORDEX projections of both models under both scenarios, over short periods."""
    return {
        "HM_PROJECTIONS_MODE": "remote",
        "HM_PROJECTIONS_DATASET": "cordex",
        "HM_PROJECTIONS_MODELS": ",".join(MODELS),
        "HM_PROJECTIONS_SCENARIOS": "rcp_4_5,rcp_8_5",
        "HM_PROJECTIONS_BASELINE": "2004-2005",  # the last historical years of CMIP5-driven CORDEX runs
        "HM_PROJECTIONS_PERIODS": "2006-2007",
    }


@pytest.fixture
def site_boxes() -> dict[str, tuple[float, float, float, float]]:
    """A 0.02° square around the centre of each site's cell."""
    boxes = {}
    for sid, (j, i) in SITES.items():
        x, y = pf.cell_centre(j, i)
        boxes[sid] = (x - 0.01, y - 0.01, x + 0.01, y + 0.01)
    return boxes


SNAPSHOT = (
    "SELECT site_id, indicator_id, model, scenario, period_start, period_end, statistic, value "
    "FROM projection_values ORDER BY site_id, indicator_id, model, scenario, period_start, statistic"
)


def test_remote_projections_end_to_end_and_a_failing_cds(env, fake, database_url, tmp_path):
    proc = cli(env, "projections")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Climate projections (remote): ok" in proc.stdout
    assert fake.problems == []
    sent = fake.submitted()
    assert {d for d, _ in sent} == {CORDEX_DATASET} and not any("area" in inputs for _, inputs in sent)
    assert {(i["gcm_model"], i["rcm_model"], i["experiment"]) for _, i in sent} == {
        (*m.split("/"), e) for m in MODELS for e in ("historical", "rcp_4_5", "rcp_8_5")
    }
    assert stored(database_url, "SELECT source, mode, status, sites FROM runs") == [
        ("projections", "remote", "ok", 3)
    ]

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, _env_file=None)
    engine = make_engine(database_url)
    try:
        with TestClient(create_app(settings, Store(engine))) as client:
            for site in SITES:
                r = client.get(f"/api/v1/sites/{site}/projections", params={"indicator": INDICATOR})
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["baseline_period"] == "2004-2005" and body["units"] == "mm"
                assert [s["scenario"] for s in body["scenarios"]] == ["rcp_4_5", "rcp_8_5"]
                for scen in body["scenarios"]:
                    assert scen["baseline_model_count"] == 2
                    base = scen["baseline"]
                    assert base["min"] < base["median"] < base["max"]  # two different models
                    [period] = scen["periods"]
                    assert (period["start"], period["end"], period["model_count"]) == (2006, 2007, 2)
                    assert (
                        period["change"]["median"] is not None and period["change_pct"]["median"] is not None
                    )
                    assert period["future"]["median"] == pytest.approx(
                        base["median"] + period["change"]["median"], abs=0.05 * abs(base["median"])
                    )
                assert body["synthetic"] is False and "SYNTHETIC" not in body["note"]
                assert "Copernicus Climate Change Service" in body["attribution"]
                assert "CORDEX, EUR-11" in body["attribution"]
                prov = body["provenance"]
                assert prov["dataset"] == "cordex" and prov["product"] == CORDEX_DATASET
                assert sorted(prov["models"]) == sorted(MODELS) and prov["calendars"] == ["360_day"]
                assert prov["bias_method"] == "none"
            runs = client.get("/api/v1/runs", params={"source": "projections"}).json()["runs"]
            assert [(r["source"], r["status"]) for r in runs] == [("projections", "ok")]
    finally:
        engine.dispose()

    before = stored(database_url, SNAPSHOT)
    assert before
    for mode, words in (("error500", "kept answering 500"), ("licence", "licence of projections-cordex")):
        fake.mode = mode
        # a new period needs files not cached yet, so the CDS is asked again
        proc = cli(env, "projections", HM_PROJECTIONS_PERIODS="2011-2012")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert words in proc.stderr.lower() and "stored projections are unchanged" in proc.stderr
        assert stored(database_url, SNAPSHOT) == before
    assert any(i["start_year"] == ["2011"] for _, i in fake.submitted())  # asked of the CDS, not cached
    statuses = stored(database_url, "SELECT status FROM runs ORDER BY started_at")
    assert [s for (s,) in statuses] == ["ok", "failed", "failed"]


def test_sources_check_lists_the_projections(env, fake, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from monitor import cli
    from monitor.cli import app

    runner = CliRunner()
    monkeypatch.setattr(cli.out, "width", 250)  # one table row per line, whatever the terminal

    def row(**extra) -> tuple[int, str]:
        result = runner.invoke(app, ["sources", "check"], env=env | extra)
        [line] = [ln for ln in result.output.splitlines() if ln.startswith("│ projections ")]
        return result.exit_code, " ".join(line.replace("│", " ").split())

    code, line = row()
    assert code == 0 and "projections climate projections remote yes yes" in line
    assert "2 model(s) × 2 scenario(s) of projections-cordex" in line
    fake.accepted_licences = []
    code, line = row()
    assert code == 0 and "remote yes NO" in line and "credentials accepted; licence not" in line
    code, line = row(HM_PROJECTIONS_MODE="local", HM_PROJECTIONS_PATH=str(tmp_path / "none"))
    assert code == 1 and "local NO" in line and "does not exist" in line
    code, line = row(HM_PROJECTIONS_MODE="demo")
    assert code == 0 and "demo yes" in line and "synthetic" in line
