"""Projections stored end to end against a hand-computed case: a tiny 360_day cube whose hot days are planted,
so every per-model value, change, ensemble statistic, level and projected alert is known in advance."""

from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr
from sqlalchemy import select

from monitor.projections import compute_projections
from monitor.store.projections import ENSEMBLE, ProjectionValueRow
from monitor.store.tables import AlertRow
from sites import SiteSet
from tests.conftest import make_site

#: Hot days planted in July of each year: model → site → (baseline years 2001–2003, future 2011–2013).
PLANTED = {
    "model_a": {"a": ([2, 4, 6], [10, 12, 14]), "b": ([0, 0, 0], [0, 0, 0])},
    "model_b": {"a": ([1, 1, 1], [5, 5, 5]), "b": ([0, 0, 0], [0, 0, 0])},
    "model_c": {"a": ([0, 0, 0], [20, 20, 20]), "b": ([0, 0, 0], [0, 0, 0])},
}


@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    scenario: str
    member: str = "r1i1p1"


class PlantedSource:
    """A projections source whose tasmax is 20 °C except on the planted hot days (33 °C)."""

    mode = "local"

    def __init__(self, planted):
        self.planted = planted

    def runs(self):
        return [Run("cordex", m, "rcp_8_5") for m in self.planted]

    def fetch(self, sites, run, first_year, last_year):
        time = xr.date_range(f"{first_year}-01-01", f"{last_year}-12-30", freq="D", calendar="360_day")
        years, months, days = (np.array([getattr(t, a) for t in time]) for a in ("year", "month", "day"))
        tasmax = np.full((len(sites), time.size), 20.0)
        for i, site in enumerate(sites.ids):
            base, future = self.planted[run.model][site]
            for year, count in [
                *zip(range(2001, 2004), base, strict=True),
                *zip(range(2011, 2014), future, strict=True),
            ]:
                tasmax[i, (years == year) & (months == 7) & (days <= count)] = 33.0
        shape = tasmax.shape
        variables = {
            "tasmax": (tasmax, "degC"),
            "tasmin": (tasmax - 8.0, "degC"),
            "tas": (tasmax - 4.0, "degC"),
            "pr": (np.full(shape, 2.0), "mm d-1"),
            "hurs": (np.full(shape, 70.0), "%"),
        }
        return xr.Dataset(
            {k: (("site", "time"), v, {"units": u}) for k, (v, u) in variables.items()},
            coords={"site": sites.ids, "time": time},
            attrs={
                "source": "projections",
                "dataset": "cordex",
                "model": run.model,
                "scenario": run.scenario,
                "calendar": "360_day",
                "product": "projections-cordex-domains-single-levels",
                "product_version": "test",
                "synthetic": False,
                "attribution": "Generated using Copernicus Climate Change Service information 2026.",
                "splice": "historical 2001–2005 + rcp_8_5 2006–2013",
            },
        )


@pytest.fixture
def sites():
    return SiteSet([make_site("a", 10.0, 45.0), make_site("b", 11.0, 46.0)])


@pytest.fixture
def tuned(settings):
    return settings.model_copy(
        update={
            "projections_baseline": "2001-2003",
            "projections_periods": "2011-2013",
            "alert_min_level": "moderate",
        }
    )


def rows(store, model, indicator="hot_days"):
    with store.session() as s:
        found = s.scalars(
            select(ProjectionValueRow).where(
                ProjectionValueRow.indicator_id == indicator, ProjectionValueRow.model == model
            )
        )
        return {(r.site_id, r.statistic): r for r in found}


def test_hand_computed_deltas_ensemble_levels_and_alerts(tuned, store, sites):
    store.upsert_sites(sites)
    report = compute_projections(tuned, store, PlantedSource(PLANTED), sites)
    assert not report.failed and len(report.runs) == 3 and report.values_written > 0

    a = rows(store, "model_a")
    assert a[("a", "baseline")].value == pytest.approx(4.0)  # mean of 2, 4, 6
    assert a[("a", "future")].value == pytest.approx(12.0)
    assert a[("a", "change")].value == pytest.approx(8.0)
    assert (a[("a", "baseline")].period_start, a[("a", "future")].period_end) == (2001, 2013)
    assert a[("a", "future")].level == 2 and a[("a", "change")].level is None  # moderate (10 ≤ 12 < 15)
    assert rows(store, "model_b")[("a", "change")].value == pytest.approx(4.0)
    assert rows(store, "model_c")[("a", "change")].value == pytest.approx(20.0)

    ens = rows(store, ENSEMBLE)
    expected = {
        "baseline_median": 1.0, "baseline_min": 0.0, "baseline_max": 4.0,
        "future_median": 12.0, "future_min": 5.0, "future_max": 20.0,
        "change_median": 8.0, "change_min": 4.0, "change_max": 20.0, "model_count": 3.0,
    }  # fmt: skip
    for stat, value in expected.items():
        assert ens[("a", stat)].value == pytest.approx(value), stat
        assert ens[("b", stat)].value == pytest.approx(0.0 if stat != "model_count" else 3.0), stat
    assert ens[("a", "baseline_median")].level == 0 and ens[("a", "future_median")].level == 2
    prov = ens[("a", "future_median")].provenance
    assert prov["models"] == ["model_a", "model_b", "model_c"] and prov["bias"]["method"] == "none"
    assert prov["splice"] == ["historical 2001–2005 + rcp_8_5 2006–2013"]
    assert "Copernicus Climate Change Service" in ens[("a", "future_median")].attribution

    projected = store.list_alerts(kind="projected", indicator="hot_days")[0]
    assert [(x.site_id, x.level, x.status) for x in projected] == [("a", 2, "open")]
    alert = projected[0]
    assert alert.value == pytest.approx(12.0) and alert.provenance["scenario"] == "rcp_8_5"
    assert alert.provenance["period"] == {"start": 2011, "end": 2013}
    assert "not a forecast" in alert.provenance["note"]
    assert store.list_alerts(kind="observed")[1] == 0 and store.list_alerts(kind="forecast")[1] == 0

    # a rerun over the same data changes nothing stored
    with store.session() as s:
        before = sorted((r.id, r.value, r.computed_at) for r in s.scalars(select(ProjectionValueRow)))
    again = compute_projections(tuned, store, PlantedSource(PLANTED), sites)
    assert again.values_written == 0 and again.alerts_raised == 0
    with store.session() as s:
        assert sorted((r.id, r.value, r.computed_at) for r in s.scalars(select(ProjectionValueRow))) == before

    # a recompute where the future no longer crosses resolves the alert
    calmer = {m: {s: (b, [0, 0, 0]) for s, (b, _) in v.items()} for m, v in PLANTED.items()}
    later = compute_projections(tuned, store, PlantedSource(calmer), sites)
    assert later.alerts_resolved >= 1  # hot days, and the heat waves the hot days made
    assert rows(store, ENSEMBLE)[("a", "future_median")].value == pytest.approx(0.0)
    with store.session() as s:
        assert s.scalar(select(AlertRow.status).where(AlertRow.id == alert.id)) == "resolved"
