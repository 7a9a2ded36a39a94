"""Deterministic synthetic climate projections for the demo: daily tas/tasmin/tasmax/pr/hurs per site for
three invented models under two scenarios, 1981–2100, in the models' own calendars.

Each model's weather is the demo weather generator (`monitor.sources.synthetic.generate`) run for the
site under a model-specific seed (the site id suffixed with the model's tag), so the geography of the
climate is the same and the internal variability differs per model. A warming and a precipitation
change that depend on the year, the scenario and the model are then added: one common historical ramp
up to 2005, as in the `historical` experiment of a real model, and a scenario-specific path after it
(the splice of CORDEX runs). Finally the Gregorian series is converted to the model's calendar
(`360_day`: 5 or 6 days dropped evenly across each year; `noleap`: 29 February dropped), so the time
coordinate is always cftime objects.

Every value is a pure function of (site, run, date): the same whatever the years asked for. The data are
SYNTHETIC (not Copernicus data) and say so in their attributes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import xarray as xr

from monitor.settings import Settings
from monitor.sources import synthetic
from monitor.sources.projections import from_gregorian
from sites.model import SiteSet

__all__ = ["FIRST_YEAR", "LAST_YEAR", "MODELS", "SCENARIOS", "SyntheticProjections"]

FIRST_YEAR, LAST_YEAR = 1981, 2100
#: Last year of the synthetic `historical` experiment; later years follow the scenario.
HISTORICAL_END = 2005
SCENARIOS = ("rcp_4_5", "rcp_8_5")
VARIABLES = ("tas", "tasmin", "tasmax", "pr", "hurs")
ATTRIBUTION = (
    "SYNTHETIC demo data standing in for C3S climate projections (CORDEX EUR-11); not Copernicus data. "
    "Real data would carry: Generated using Copernicus Climate Change Service information {year}, with "
    "the CORDEX modelling groups' acknowledgement."
)
PRODUCT = "Heritage Monitor synthetic climate projections"
PRODUCT_VERSION = "synthetic-projections-1"


@dataclass(frozen=True)
class _Model:
    """An invented model: its calendar, how strongly it warms and how its precipitation responds."""

    name: str
    tag: str  # suffix of the generator seed: the model's own internal variability
    calendar: str
    warming: float  # factor on the scenario's warming path
    pr_per_kelvin: float  # relative change of precipitation per kelvin of warming


MODELS: tuple[_Model, ...] = (
    _Model("synthetic_gcm_a/synthetic_rcm_1", "gcm-a", "360_day", 1.25, -0.05),
    _Model("synthetic_gcm_b/synthetic_rcm_2", "gcm-b", "noleap", 0.85, 0.03),
    _Model("synthetic_gcm_c/synthetic_rcm_1", "gcm-c", "standard", 1.0, -0.01),
)


def _run_type():
    """`ProjectionRun` of the projections source when it is importable, else a local twin (same fields)."""
    try:
        from monitor.sources.projections import ProjectionRun
    except ImportError:  # the data-access module is optional for the demo
        return _Run
    return ProjectionRun


@dataclass(frozen=True)
class _Run:
    dataset: str
    model: str
    scenario: str
    member: str = "r1i1p1"


def warming(years: np.ndarray, scenario: str, factor: float = 1.0) -> np.ndarray:
    """Warming (K) relative to the 1981–2010 climate of the generator at fractional `years`.

    A historical ramp of 0.025 K/yr centred on 1995 until 2005, then RCP4.5 levelling off towards
    about +1.7 K and RCP8.5 accelerating to about +4.6 K by 2100 (for `factor` 1).
    """
    y = np.asarray(years, dtype=float)
    hist = 0.025 * (np.minimum(y, HISTORICAL_END + 1) - 1995.0)
    after = np.maximum(y - (HISTORICAL_END + 1), 0.0)  # the scenario starts on 1 January 2006
    if scenario == "rcp_4_5":
        future = 1.7 * (1.0 - np.exp(-after / 55.0))
    elif scenario == "rcp_8_5":
        future = 0.025 * after + 0.00022 * after**2
    else:
        raise ValueError(f"unknown synthetic scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    return factor * (hist + future)


class SyntheticProjections:
    """The demo projections source: three synthetic models × two scenarios, 1981–2100, labelled synthetic."""

    mode = "demo"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def _year(self) -> int:
        """The year a real download would be dated: the demo's last day (default: today)."""
        end = self.settings.demo_end if self.settings is not None else None
        return (end or dt.date.today()).year

    def runs(self) -> list:
        """Every (model, scenario) pair this source offers."""
        run = _run_type()
        return [run("synthetic", m.name, s) for m in MODELS for s in SCENARIOS]

    def fetch(self, sites: SiteSet, run, first_year: int, last_year: int) -> xr.Dataset:
        """Daily values per site over the years `first_year`..`last_year` (those outside 1981–2100 are
        absent) in the model's calendar, with the projections contract's attributes."""
        model = _model(run.model)
        if run.scenario not in SCENARIOS:
            raise ValueError(f"unknown synthetic scenario {run.scenario!r}; known: {', '.join(SCENARIOS)}")
        first, last = max(first_year, FIRST_YEAR), min(last_year, LAST_YEAR)
        if first > last:
            raise ValueError(f"no synthetic projection years in {first_year}–{last_year}")
        seeded = SiteSet(s.model_copy(update={"id": f"{s.id}.{model.tag}"}) for s in sites)
        base = synthetic.generate(seeded, dt.date(first, 1, 1), dt.date(last, 12, 31), list(VARIABLES))
        base = base.assign_coords(site=("site", np.array(sites.ids, dtype=object)))
        time = base.indexes["time"]
        frac = time.year + (time.day_of_year - 0.5) / np.where(time.is_leap_year, 366.0, 365.0)
        dtas = warming(frac.to_numpy(), run.scenario, model.warming)[None, :]
        tas = base["tas"] + dtas
        tasmax = base["tasmax"] + 1.1 * dtas
        tasmin = base["tasmin"] + 0.9 * dtas
        pr = base["pr"] * np.clip(1.0 + model.pr_per_kelvin * dtas, 0.2, None)
        pr = pr * np.where(pr > 10.0, 1.0 + 0.07 * dtas, 1.0)  # heavier heavy rain: ~7 %/K
        hurs = (base["hurs"] - 1.5 * dtas).clip(5.0, 100.0)
        out = xr.Dataset(
            {
                name: da.astype(np.float32).assign_attrs(synthetic.VARIABLES[name])
                for name, da in zip(VARIABLES, (tas, tasmin, tasmax, pr, hurs), strict=True)
            },
            coords={"site": base["site"], "lat": base["lat"], "lon": base["lon"], "time": base["time"]},
        )
        out = from_gregorian(out, model.calendar, first, last)
        out.attrs = {
            "source": "projections",
            "dataset": "synthetic",
            "model": model.name,
            "scenario": run.scenario,
            "member": getattr(run, "member", "r1i1p1"),
            "calendar": model.calendar,
            "product": PRODUCT,
            "product_version": PRODUCT_VERSION,
            "synthetic": True,
            "attribution": ATTRIBUTION.format(year=self._year()),
            "splice": _splice(run.scenario, first, last),
            "title": f"SYNTHETIC daily projections ({model.name}, {run.scenario}) at heritage sites",
        }
        return out


def _model(name: str) -> _Model:
    for m in MODELS:
        if m.name == name:
            return m
    raise ValueError(f"unknown synthetic model {name!r}; known: {', '.join(m.name for m in MODELS)}")


def _splice(scenario: str, first: int, last: int) -> str:
    """Which experiment the years come from, as for a real model whose historical run ends in 2005."""
    if last <= HISTORICAL_END:
        return f"historical {first}–{last}"
    if first > HISTORICAL_END:
        return f"{scenario} {first}–{last}"
    return f"historical {first}–{HISTORICAL_END} + {scenario} {HISTORICAL_END + 1}–{last}"
