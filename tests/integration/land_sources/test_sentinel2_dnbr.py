"""The dNBR histogram request of the Sentinel-2 source, through the real sentinelhub client against the fake
CDSE, with answers in the real Statistical API format (bins with lowEdge/highEdge/count, underflowCount
and overflowCount, as in sentinelhub-py's recorded `normal_stat_result.json`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest

import indicators.land  # noqa: F401  (registers burn_severity)
from indicators.core import compute
from monitor.sources import sentinel2
from monitor.sources.base import SourceRequestError
from sites import SiteSet
from tests.conftest import make_site
from tests.integration.land_sources.conftest import make_settings
from tests.integration.land_sources.fakes import ShFake, time_range

VENICE = make_site("venezia_san_marco", 12.3387, 45.4341, half=0.002, buffer_m=100)
METEORA = make_site("meteora", 21.6306, 39.7217, half=0.003, buffer_m=300)
POST = (date(2026, 9, 1), date(2026, 9, 30))
PRE = (date(2025, 9, 1), date(2025, 9, 30))

#: Daily-statistics checks of the fake that a dNBR request legitimately fails (other bands, one interval,
#: another histogram); everything else the fake checks still applies.
DAILY_ONLY = ("evalscript lacks band B04", "evalscript lacks band B08", "evalscript lacks band B11")


def check_dnbr_request(original):
    def check(body: dict, auth: str | None) -> list[str]:
        problems = [
            p
            for p in original(body, auth)
            if p not in DAILY_ONLY and not p.startswith(("aggregation interval", "no NBR histogram"))
        ]
        if problems and problems[0] in ("missing Bearer token", "unknown token", "expired token"):
            return problems
        agg = body["aggregation"]
        t0, t1 = time_range(body)
        if agg["aggregationInterval"]["of"] != f"P{(t1 - t0).days}D":
            problems.append(f"dNBR interval {agg['aggregationInterval']} is not the whole span")
        script = agg["evalscript"]
        for needle in ('mosaicking: "ORBIT"', "function preProcessScenes", "evaluatePixel(samples, scenes)"):
            if needle not in script:
                problems.append(f"evalscript lacks {needle}")
        hist = body.get("calculations", {}).get("dnbr", {}).get("histograms", {}).get("default", {})
        if hist != {"nBins": 400, "lowEdge": -2.0, "highEdge": 2.0}:
            problems.append(f"dNBR histogram {hist}")
        return problems

    return check


def dnbr_answer(body: dict, counts: dict[float, int], nodata: int = 0, under: int = 0, over: int = 0) -> dict:
    """A real-format answer: one interval over the whole range, 400 bins with float-accumulated edges."""
    t0, t1 = time_range(body)
    bins, edge = [], -2.0
    values = np.zeros(400, dtype=int)
    for value, n in counts.items():
        values[int(np.floor(round((value + 2.0) / 0.01, 6)))] += n
    for i in range(400):
        bins.append({"lowEdge": edge, "highEdge": edge + 0.01, "count": int(values[i])})
        edge += 0.01
    valid = int(values.sum()) + under + over
    stats = {
        "min": -0.1,
        "max": 0.9,
        "mean": 0.2,
        "stDev": 0.2,
        "sampleCount": valid + nodata,
        "noDataCount": nodata,
    }
    return {
        "data": [
            {
                "interval": {
                    "from": t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "to": t1.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "outputs": {
                    "dnbr": {
                        "bands": {
                            "B0": {
                                "stats": stats,
                                "histogram": {"bins": bins, "overflowCount": over, "underflowCount": under},
                            }
                        }
                    }
                },
            }
        ],
        "status": "OK",
    }


@pytest.fixture
def dnbr_fake(fake, monkeypatch):
    monkeypatch.setattr(fake.sh, "check_request", check_dnbr_request(ShFake.check_request.__get__(fake.sh)))
    return fake


def build(settings):
    return sentinel2.build(settings, "remote")


def test_one_request_per_site_over_both_windows_and_the_cube(dnbr_fake, sh_settings):
    fake = dnbr_fake

    def reply(body: dict) -> tuple[int, Any, dict]:
        crs = body["input"]["bounds"]["properties"]["crs"]
        if crs.endswith("32634"):  # Meteora: 40 % burnt, 25 % at high severity
            return 200, dnbr_answer(body, {0.0: 60, 0.2: 15, 0.7: 25}, nodata=20), {}
        return 200, dnbr_answer(body, {0.0: 98, 0.12: 2}), {}

    fake.sh.default = reply
    cube = build(sh_settings).fetch_dnbr(SiteSet([VENICE, METEORA]), POST)
    assert fake.sh.violations == []
    assert len(fake.sh.requests) == 2
    body = fake.sh.requests[0]["body"]
    assert body["aggregation"]["timeRange"] == {"from": "2025-09-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}
    assert body["aggregation"]["aggregationInterval"] == {"of": "P395D"}
    script = body["aggregation"]["evalscript"]
    assert 'PRE = [Date.parse("2025-09-01T00:00:00Z"), Date.parse("2025-10-01T00:00:00Z")]' in script
    assert 'POST = [Date.parse("2026-09-01T00:00:00Z"), Date.parse("2026-10-01T00:00:00Z")]' in script

    assert cube.dnbr_hist.dims == ("site", "time", "dnbr_bin") and cube.dnbr_hist.shape == (2, 1, 400)
    assert [str(t)[:10] for t in cube.time.values] == ["2026-09-01"]
    np.testing.assert_allclose(
        cube.dnbr_bin_low.values[[175, 190, 210, 227, 244, 266]], [-0.25, -0.1, 0.1, 0.27, 0.44, 0.66]
    )
    assert float(cube.dnbr_hist.sel(site="meteora").sum()) == 100
    assert cube.dnbr_valid_fraction.sel(site="meteora").item() == pytest.approx(100 / 120)
    assert json.loads(cube.attrs["dnbr_windows"]) == {
        "pre": ["2025-09-01", "2025-09-30"],
        "post": ["2026-09-01", "2026-09-30"],
    }
    assert cube.attrs["synthetic"] == "false" and "Sentinel data 2026" in cube.attrs["attribution"]
    assert json.loads(cube.attrs["request"])["requests_sent"] == 2

    burnt = compute("burn_severity", cube)
    np.testing.assert_allclose(burnt.values[:, 0], [0.02, 0.40])
    high = compute("burn_severity_high_fraction", cube)
    np.testing.assert_allclose(high.values[:, 0], [0.0, 0.25])


def test_underflow_and_overflow_join_the_outer_bins(dnbr_fake, sh_settings):
    dnbr_fake.sh.default = lambda body: (200, dnbr_answer(body, {0.0: 10}, under=2, over=3), {})
    cube = build(sh_settings).fetch_dnbr(SiteSet([VENICE]), POST, PRE)
    hist = cube.dnbr_hist.values[0, 0]
    assert hist[0] == 2 and hist[-1] == 3 and hist.sum() == 15


def test_a_failed_site_keeps_the_others(dnbr_fake, sh_settings):
    calls = {"n": 0}

    def reply(body: dict) -> tuple[int, Any, dict]:
        calls["n"] += 1
        if body["input"]["bounds"]["properties"]["crs"].endswith("32634"):
            return 200, {"data": None, "status": "FAILED", "error": {"type": "EXECUTION_ERROR"}}, {}
        return 200, dnbr_answer(body, {0.05: 50}), {}

    dnbr_fake.sh.default = reply
    cube = build(sh_settings).fetch_dnbr(SiteSet([VENICE, METEORA]), POST)
    assert np.isnan(cube.dnbr_hist.sel(site="meteora").values).all()
    assert float(cube.dnbr_hist.sel(site="venezia_san_marco").sum()) == 50
    assert json.loads(cube.attrs["response_status"]) == {"meteora": "FAILED", "venezia_san_marco": "OK"}


def test_windows_are_checked_before_any_request(dnbr_fake, sh_settings):
    source = build(sh_settings)
    with pytest.raises(SourceRequestError, match="must end before"):
        source.fetch_dnbr(SiteSet([VENICE]), POST, (date(2026, 8, 1), date(2026, 9, 1)))
    with pytest.raises(SourceRequestError, match="empty"):
        source.fetch_dnbr(SiteSet([VENICE]), (date(2026, 9, 30), date(2026, 9, 1)))
    with pytest.raises(SourceRequestError, match="before Sentinel-2"):
        source.fetch_dnbr(SiteSet([VENICE]), (date(2016, 1, 1), date(2016, 1, 31)))
    assert dnbr_fake.sh.requests == []


def test_past_windows_are_served_from_the_raw_cache(dnbr_fake, sh_settings):
    dnbr_fake.sh.default = lambda body: (200, dnbr_answer(body, {0.0: 10}), {})
    post = (date(2024, 8, 1), date(2024, 8, 31))
    first = build(sh_settings).fetch_dnbr(SiteSet([VENICE]), post)
    again = build(sh_settings).fetch_dnbr(SiteSet([VENICE]), post)
    assert len(dnbr_fake.sh.requests) == 1
    np.testing.assert_array_equal(first.dnbr_hist.values, again.dnbr_hist.values)


def test_local_mode_reads_saved_dnbr_answers(tmp_path):
    folder = tmp_path / "s2"
    folder.mkdir()
    body = {"aggregation": {"timeRange": {"from": "2025-09-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}}}
    (folder / "meteora.dnbr.json").write_text(json.dumps([dnbr_answer(body, {0.5: 4, 0.0: 4})]))
    settings = make_settings(tmp_path, sentinel2_mode="local", sentinel2_path=folder)
    cube = sentinel2.build(settings, "local").fetch_dnbr(SiteSet([METEORA, VENICE]), POST)
    assert float(compute("burn_severity", cube).sel(site="meteora").item()) == pytest.approx(0.5)
    assert np.isnan(cube.dnbr_hist.sel(site="venezia_san_marco").values).all()


def test_anniversary_window_of_a_leap_day():
    assert sentinel2.anniversary_window((date(2028, 2, 1), date(2028, 2, 29))) == (
        date(2027, 2, 1),
        date(2027, 2, 28),
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node (to run the evalscript) is not installed")
def test_the_evalscript_keeps_both_windows_and_differences_the_medians(tmp_path):
    """Run the evalscript in node with Sentinel Hub's `index` and fake orbits: the middle orbits are dropped,
    cloudy samples are masked, dNBR is median(pre) - median(post)."""
    script = sentinel2.dnbr_evalscript(PRE, POST)

    def orbit(day: date) -> dict:
        return {"dateFrom": datetime(day.year, day.month, day.day, 10).strftime("%Y-%m-%dT%H:%M:%SZ")}

    days = [
        date(2025, 9, 5),
        date(2025, 9, 15),
        date(2025, 9, 25),
        date(2026, 3, 1),
        date(2026, 9, 10),
        date(2026, 9, 20),
    ]
    harness = f"""
function index(a, b) {{ return (a - b) / (a + b); }}
{script}
const collections = {{scenes: {{orbits: {json.dumps([orbit(d) for d in days])}}}}};
const kept = preProcessScenes(collections).scenes.orbits;
// samples of the kept orbits: pre NBR 0.5, 0.6 (cloudy, masked), 0.7; post NBR 0.1, 0.2
function sample(nbr, scl) {{ return {{B8A: 1 + nbr, B12: 1 - nbr, SCL: scl, dataMask: 1}}; }}
const samples = [sample(0.5, 4), sample(0.6, 9), sample(0.7, 4), sample(0.1, 4), sample(0.2, 5)];
const out = evaluatePixel(samples, {{orbits: kept}});
const none = evaluatePixel([sample(0.5, 4)], {{orbits: kept.slice(0, 1)}});
const result = {{kept: kept.length, dnbr: out.dnbr[0], mask: out.dataMask[0], none: none.dataMask[0]}};
console.log(JSON.stringify(result));
"""
    path = tmp_path / "harness.js"
    path.write_text(harness)
    result = json.loads(
        subprocess.run(["node", str(path)], capture_output=True, text=True, check=True).stdout
    )
    assert result["kept"] == 5  # the March 2026 orbit is outside both windows
    assert result["dnbr"] == pytest.approx(0.6 - 0.15) and result["mask"] == 1
    assert result["none"] == 0  # no clear post-fire orbit: masked
