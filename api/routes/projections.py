"""Climate projections: baseline, future values and changes of an indicator at a site per scenario and
period (ensemble median and range across models), as JSON, CSV and a chart. Planning information, kept
apart from observed and forecast values."""

from __future__ import annotations

import csv
import io
import textwrap
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from pydantic import BaseModel, Field

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from api.routes.plots import COLOURS, _bands
from indicators import LEVELS, IndicatorSpec, Thresholds, level_name
from monitor.projections import PLANNING_NOTE, is_precipitation_amount, projected_indicators
from monitor.store.projections import projection_values, stored_scenarios

router = APIRouter(prefix="/api/v1", tags=["projections"], responses=COMMON_ERRORS)

SiteParam = Annotated[str, Path(description="Site id", examples=["stonehenge"])]
IndicatorParam = Annotated[
    str,
    Query(
        max_length=80,
        description="Id of a climate indicator computed from projections (see /api/v1/indicators)",
        examples=["freeze_thaw_cycles"],
    ),
]
ScenarioParam = Annotated[
    str | None,
    Query(
        max_length=20,
        description="Only this scenario, as the Climate Data Store spells it (default: every stored one)",
        examples=["rcp_4_5"],
    ),
]


class Spread(BaseModel):
    """The ensemble median and range across models of one statistic."""

    median: float | None = Field(description="Median across models")
    min: float | None = Field(description="Lowest model value")
    max: float | None = Field(description="Highest model value")


class ProjectedPeriod(BaseModel):
    """A future period under one scenario."""

    start: int = Field(description="First year (inclusive)")
    end: int = Field(description="Last year (inclusive)")
    future: Spread = Field(description="Period mean of the annual values, in the indicator's units")
    change: Spread = Field(description="Future minus the model's own baseline, in the indicator's units")
    change_pct: Spread | None = Field(
        None, description="Change in % of the baseline (precipitation amounts and counts only)"
    )
    model_count: int = Field(description="Models in the ensemble")
    level: str = Field(description="Risk level of the ensemble median of the future value")
    material: str | None = Field(None, description="Material whose levels decided it (None: default levels)")


class ScenarioProjection(BaseModel):
    """Baseline and future periods of one scenario."""

    scenario: str
    baseline: Spread = Field(description="Baseline period mean, in the indicator's units")
    baseline_level: str = Field(description="Risk level of the ensemble median of the baseline")
    baseline_model_count: int
    periods: list[ProjectedPeriod]


class ProjectionProvenance(BaseModel):
    """Where the projections come from and how they were computed."""

    dataset: str
    product: str
    product_version: str
    models: list[str]
    scenarios: list[str]
    calendars: list[str]
    splice: list[str] = Field(description="Which experiment (historical, scenario) gave which years")
    bias_method: str = Field(description="`none` (changes against each model's own baseline) or `eqm`")
    bias: dict = Field(description="The bias adjustment: method, reference data and period")
    annual_statistic: str = Field(description="How each year's value is formed from the indicator's values")
    indicator_version: str


class ProjectionsPublic(BaseModel):
    """Projected values of one indicator at one site."""

    site: str
    site_name: str
    indicator: str
    title: str
    units: str
    baseline_period: str | None = Field(description="Baseline years, YYYY-YYYY")
    levels: dict
    scenarios: list[ScenarioProjection]
    provenance: ProjectionProvenance | None
    synthetic: bool
    attribution: str
    note: str = Field(description="What these numbers are (and are not)")


def _spec(indicator: str) -> IndicatorSpec:
    spec = indicators.get(indicator)
    if spec.id not in {s.id for s in projected_indicators()}:
        raise ProblemError(
            422,
            f"{spec.id} is not computed from climate projections (it needs {', '.join(spec.inputs)})",
            errors=[{"field": "query.indicator"}],
        )
    return spec


def _rows(store, site_id: str, spec: IndicatorSpec, scenario: str | None):
    if scenario is not None and scenario not in (known := stored_scenarios(store)):
        raise ProblemError(
            422,
            f"no projections for scenario {scenario!r}; stored: {', '.join(known) or 'none'}",
            errors=[{"field": "query.scenario"}],
        )
    return projection_values(store, site_id, spec.id, scenario, ensemble_only=True)


def _spread(stats: dict, name: str) -> Spread:
    return Spread(**{a: stats.get(f"{name}_{a}") for a in ("median", "min", "max")})


def build(store, site_id: str, indicator: str, scenario: str | None) -> ProjectionsPublic:
    """The projections of one indicator at one site as the API shows them."""
    spec = _spec(indicator)
    site = store.get_site(site_id)
    rows = _rows(store, site_id, spec, scenario)
    by_scenario: dict[str, dict[tuple[int, int], dict]] = {}
    levels: dict[tuple[str, int, int, str], tuple[int | None, str | None]] = {}
    for r in rows:
        by_scenario.setdefault(r.scenario, {}).setdefault((r.period_start, r.period_end), {})[r.statistic] = (
            r.value
        )
        levels[(r.scenario, r.period_start, r.period_end, r.statistic)] = (r.level, r.material)
    first = rows[0] if rows else None
    baseline_period = None
    scenarios = []
    for name, periods in sorted(by_scenario.items()):
        base_key = next((k for k, v in periods.items() if "baseline_median" in v), None)
        if base_key is None:
            continue
        baseline_period = f"{base_key[0]}-{base_key[1]}"
        base = periods[base_key]
        base_level, _ = levels[(name, *base_key, "baseline_median")]
        out = []
        for key, stats in sorted(periods.items()):
            if "future_median" not in stats:
                continue
            level, material = levels[(name, *key, "future_median")]
            out.append(
                ProjectedPeriod(
                    start=key[0],
                    end=key[1],
                    future=_spread(stats, "future"),
                    change=_spread(stats, "change"),
                    change_pct=_spread(stats, "change_pct") if is_precipitation_amount(spec) else None,
                    model_count=int(stats.get("model_count") or 0),
                    level=level_name(-1 if level is None else level),
                    material=material,
                )
            )
        scenarios.append(
            ScenarioProjection(
                scenario=name,
                baseline=_spread(base, "baseline"),
                baseline_level=level_name(-1 if base_level is None else base_level),
                baseline_model_count=int(base.get("baseline_model_count") or 0),
                periods=out,
            )
        )
    provenance = None
    if first is not None:
        p = first.provenance or {}
        provenance = ProjectionProvenance(
            dataset=first.dataset,
            product=str(p.get("product", "")),
            product_version=str(p.get("product_version", "")),
            models=sorted({m for r in rows for m in (r.provenance or {}).get("models", [])}),
            scenarios=sorted(by_scenario),
            calendars=sorted({c for r in rows for c in (r.provenance or {}).get("calendars", [])}),
            splice=sorted({s for r in rows for s in (r.provenance or {}).get("splice", [])}),
            bias_method=first.bias_method,
            bias=dict(p.get("bias", {})),
            annual_statistic=str(p.get("annual", "")),
            indicator_version=str(p.get("indicator_version", spec.version)),
        )
    synthetic = any(r.synthetic for r in rows)
    n_models = len(provenance.models) if provenance else 0
    note = (
        f"Climate projections: a {PLANNING_NOTE}. Period means of {n_models} model(s) per scenario; "
        "the change is against each model's own baseline."
    )
    if synthetic:
        note += " SYNTHETIC demo data, not Copernicus data."
    return ProjectionsPublic(
        site=site.id,
        site_name=site.name,
        indicator=spec.id,
        title=spec.title,
        units=spec.units,
        baseline_period=baseline_period,
        levels=spec.thresholds_for(None, site.thresholds.get(spec.id)).as_dict(),
        scenarios=scenarios,
        provenance=provenance,
        synthetic=synthetic,
        attribution=" ".join(sorted({r.attribution for r in rows if r.attribution})),
        note=note,
    )


@router.get(
    "/sites/{site_id}/projections",
    summary="Projected change of one climate indicator at one site (per scenario and period)",
    responses=problem_responses(404, 422),
)
def read_projections(
    site_id: SiteParam,
    indicator: IndicatorParam,
    store: StoreDep,
    _: ReaderDep,
    scenario: ScenarioParam = None,
) -> ProjectionsPublic:
    """Baseline value and, per scenario and future period, the ensemble median, min and max of the future
    value and of the change, the model count, the level of the median, units, provenance and attribution.

    Empty `scenarios` when no projection is stored for the site. A projection for planning, not a forecast.
    """
    return build(store, site_id, indicator, scenario)


@router.get(
    "/sites/{site_id}/projections.csv",
    summary="Projected change of one climate indicator at one site as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problem_responses(404, 422)},
)
def projections_csv(
    site_id: SiteParam,
    indicator: IndicatorParam,
    store: StoreDep,
    _: ReaderDep,
    scenario: ScenarioParam = None,
) -> Response:
    """One line per scenario and period (the baseline first), with units, provenance and attribution."""
    data = build(store, site_id, indicator, scenario)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["# " + data.note])
    w.writerow(["# " + (data.attribution or "no data")])
    w.writerow(
        [
            "site", "indicator", "units", "scenario", "period_start", "period_end", "statistic",
            "median", "min", "max", "model_count", "level", "dataset", "bias_method", "synthetic",
        ]
    )  # fmt: skip
    prov = data.provenance
    tail = [prov.dataset if prov else "", prov.bias_method if prov else "", str(data.synthetic).lower()]
    for s in data.scenarios:
        b0, b1 = (data.baseline_period or "-").split("-")[:2] if data.baseline_period else ("", "")
        b = s.baseline
        w.writerow([data.site, data.indicator, data.units, s.scenario, b0, b1, "baseline", b.median, b.min,
                    b.max, s.baseline_model_count, s.baseline_level, *tail])  # fmt: skip
        for p in s.periods:
            for name, spread, units, level in (
                ("future", p.future, data.units, p.level),
                ("change", p.change, data.units, ""),
                ("change_pct", p.change_pct, "%", ""),
            ):
                if spread is None:
                    continue
                w.writerow([data.site, data.indicator, units, s.scenario, p.start, p.end, name, spread.median,
                            spread.min, spread.max, p.model_count, level, *tail])  # fmt: skip
    filename = f"{data.site}_{data.indicator}_projections.csv"
    return Response(
        buf.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/sites/{site_id}/projections.png",
    summary="Chart of the projected change of one climate indicator at one site (PNG)",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **problem_responses(404, 422),
    },
)
def projections_png(
    site_id: SiteParam,
    indicator: IndicatorParam,
    store: StoreDep,
    _: ReaderDep,
    scenario: ScenarioParam = None,
) -> Response:
    """The baseline and each future period per scenario as points (ensemble median) with the model range as
    error bars, risk bands shaded, units on the axis, site name in the title and the attribution (or the
    synthetic notice) at the foot."""
    data = build(store, site_id, indicator, scenario)
    spec = indicators.get(indicator)
    site = store.get_site(site_id)
    levels = spec.thresholds_for(None, site.thresholds.get(spec.id))
    fig = Figure(figsize=(9, 4.8), dpi=100)
    ax = fig.add_subplot()
    labels = [f"baseline\n{data.baseline_period}"] if data.baseline_period else []
    labels += sorted({f"{p.start}–{p.end}" for s in data.scenarios for p in s.periods})
    positions = {label: i for i, label in enumerate(labels)}
    palette = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a"]
    values = []
    n = max(len(data.scenarios), 1)
    for k, s in enumerate(data.scenarios):
        shift = (k - (n - 1) / 2) * 0.12
        points = [(labels[0], s.baseline)] + [(f"{p.start}–{p.end}", p.future) for p in s.periods]
        xs, ys, lo, hi = [], [], [], []
        for label, spread in points:
            if spread.median is None:
                continue
            xs.append(positions[label] + shift)
            ys.append(spread.median)
            lo.append(spread.median - (spread.min if spread.min is not None else spread.median))
            hi.append((spread.max if spread.max is not None else spread.median) - spread.median)
            values += [v for v in (spread.min, spread.max, spread.median) if v is not None]
        colour = palette[k % len(palette)]
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", color=colour, capsize=4, lw=1.2, zorder=3,
                    label=f"{s.scenario} (median, model range)")  # fmt: skip
    if isinstance(levels, Thresholds):
        marks = [getattr(levels, n) for n in LEVELS[1:] if getattr(levels, n) is not None]
        finite = [v for v in values if np.isfinite(v)]
        lo_v = min(finite + marks[:1]) if finite or marks else 0.0
        hi_v = max(finite + marks[:1]) if finite or marks else 1.0
        pad = (hi_v - lo_v) * 0.1 or 1.0
        lo_v, hi_v = lo_v - pad, hi_v + pad
        bands = _bands(levels, lo_v, hi_v)
        for bottom, top, name in bands:
            ax.axhspan(bottom, top, color=COLOURS[name], zorder=0)
        ax.set_ylim(lo_v, hi_v)
        shown = [name for _, _, name in bands]
    else:
        shown = []
    if not data.scenarios:
        ax.text(0.5, 0.5, "no projections stored", transform=ax.transAxes, ha="center", va="center")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    annual = data.provenance.annual_statistic if data.provenance else ""
    ax.set_ylabel(f"{spec.title} [{spec.units}]" + (f"\n{annual}, period mean" if annual else ""), fontsize=8)
    title = f"{site.name} — {spec.title}: climate projections"
    ax.set_title(title + (" (SYNTHETIC)" if data.synthetic else ""))
    handles, names = ax.get_legend_handles_labels()
    handles += [Patch(color=COLOURS[n]) for n in dict.fromkeys(shown)]
    names += [f"risk: {n}" for n in dict.fromkeys(shown)]
    if handles:
        ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7)
    foot_text = f"A {PLANNING_NOTE}. " + (data.attribution or "No data: no attribution.")
    foot = "\n".join(textwrap.wrap(foot_text, 150)[:4])
    fig.text(0.01, 0.01, foot, fontsize=6, va="bottom", ha="left", color="#455a64")
    fig.subplots_adjust(bottom=0.24 + 0.025 * foot.count("\n"))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Response(buf.getvalue(), media_type="image/png")
