"""Projected climate indicators: the observed indicators' own code run on climate-projection cubes, reduced to
period means per model, changes against each model's baseline, ensembles per scenario, risk levels and
planning alerts.

For each run (model × scenario) the daily cube of every site is fetched once over the baseline and future
years, optionally bias-adjusted against ERA5-Land (`bias_adjust`), and every climate indicator whose
inputs the cube has is computed with `monitor.compute.compute` — the same function the pipeline uses on
observations — in the model's own calendar (cftime). Each indicator's values become one value per year
(`annual_values`: the value of the year for annual indicators, the worst month for monthly ones, so the
indicator's thresholds still apply), then a mean per period (`period_means`). The change is future − baseline
(and, for precipitation amounts and counts, also in % of the baseline). Across the models of a scenario the
ensemble gives median, min, max and the model count; levels come from the sites' materials and thresholds
(`indicators.classify_sites`).

Projected alerts (kind `projected`) say that the ensemble median of a future period under a scenario
reaches a higher level than the baseline (and at least the alert level): a projection for planning, not a
forecast. They are kept apart from observed and forecast alerts, updated on every recompute and resolved
when a recompute no longer shows the crossing. They are never delivered to subscribers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sqlalchemy import select
from sqlalchemy.orm import Session
from xclim.core.units import convert_units_to

import indicators
from indicators import LEVEL_CODES, IndicatorSpec, Thresholds, level_name
from monitor.alerts.episodes import (
    ACTIVE,
    AlertRule,
    float_or_none,
    open_episode,
    resolve_episode,
    threshold_of,
)
from monitor.compute import compute
from monitor.settings import Settings
from monitor.sources.projections import from_gregorian
from monitor.store.projections import ENSEMBLE, RECORD_COLUMNS, replace_projections, stored_values
from monitor.store.repository import Store, utcnow
from monitor.store.tables import AlertEventRow, AlertRow
from sites import SiteSet

log = logging.getLogger(__name__)

#: Daily variables a projection cube may have, with the units the indicators are computed in (those of
#: the observed ERA5-Land cube).
INPUT_UNITS = {"tas": "degC", "tasmin": "degC", "tasmax": "degC", "pr": "mm d-1", "hurs": "%"}
#: Variables bias-adjusted with `eqm`, and the kind of adjustment (additive / multiplicative).
ADJUSTED = {"tas": "+", "tasmin": "+", "tasmax": "+", "pr": "*"}
PLANNING_NOTE = "projection for planning, not a forecast"
STATISTICS = ("baseline", "future", "change", "change_pct")
AGGREGATES = ("median", "min", "max")


class ProjectionError(ValueError):
    """A projection cannot be computed as asked (bad period, missing reference data, …)."""


@dataclass(frozen=True, order=True)
class Period:
    """Whole years `start`..`end` (inclusive)."""

    start: int
    end: int

    @property
    def label(self) -> str:
        return f"{self.start}-{self.end}"


def parse_period(text: str) -> Period:
    """`YYYY-YYYY` → Period; the start must not be after the end."""
    try:
        start, end = (int(p) for p in text.strip().split("-"))
    except ValueError:
        raise ProjectionError(f"a period is YYYY-YYYY, not {text!r}") from None
    if start > end:
        raise ProjectionError(f"period {text!r} starts after it ends")
    return Period(start, end)


def configured_periods(settings: Settings) -> tuple[Period, list[Period]]:
    """The baseline and the future periods of the settings."""
    baseline = parse_period(settings.projections_baseline)
    futures = [parse_period(p) for p in settings.projections_periods.split(",") if p.strip()]
    return baseline, futures


def projected_indicators(variables: Iterable[str] = INPUT_UNITS) -> list[IndicatorSpec]:
    """Every catalogued indicator computable from these daily variables (the climate indicators)."""
    have = set(variables)
    return [s for s in indicators.catalog() if s.inputs and set(s.inputs) <= have and not s.optional_inputs]


def is_precipitation_amount(spec: IndicatorSpec) -> bool:
    """Whether a relative change (%) is meaningful: an amount or count from precipitation only."""
    return set(spec.inputs) == {"pr"} and spec.units != "1"


def indicator_params(spec: IndicatorSpec, baseline: Period) -> dict[str, Any]:
    """Parameters tying an indicator's own reference period (percentile baseline, SPI calibration) to the
    projection baseline, so every period is judged against the model's baseline climate."""
    params: dict[str, Any] = {}
    if "baseline_start" in spec.parameters:
        params |= {"baseline_start": baseline.start, "baseline_end": baseline.end}
    if "cal_start" in spec.parameters:
        params |= {"cal_start": f"{baseline.start:04d}-01-01", "cal_end": f"{baseline.end:04d}-12-31"}
    return params


def annual_statistic(spec: IndicatorSpec) -> str:
    """How the values of one year are reduced to one value (stated in the provenance)."""
    if spec.freq == "YS":
        return "annual value"
    worst = "lowest" if _lower_is_worse(spec) else "highest"
    unit = {"MS": "month", "D": "day"}.get(spec.freq, "period")
    return f"{worst} {unit} of each year"


def _lower_is_worse(spec: IndicatorSpec) -> bool:
    return isinstance(spec.levels, Thresholds) and spec.levels.direction == "lower_is_worse"


def annual_values(spec: IndicatorSpec, values: xr.DataArray) -> xr.DataArray:
    """One value per (site, year): the year's value, or its worst sub-period (see `annual_statistic`).

    Calendar-agnostic (`time.dt.year` works on cftime axes); years without a value are NaN.
    """
    years = values["time"].dt.year.rename("year")
    grouped = values.groupby(years)
    if spec.freq == "YS":
        out = grouped.mean(skipna=True)
    elif _lower_is_worse(spec):
        out = grouped.min(skipna=True)
    else:
        out = grouped.max(skipna=True)
    return out.transpose("site", "year")


def period_means(annual: xr.DataArray, periods: Sequence[Period]) -> np.ndarray:
    """(site, period) means of the annual values in each period's years (absent years are skipped; a period
    without any value is NaN)."""
    year = annual["year"].values
    data = annual.values.astype(float)
    out = np.full((data.shape[0], len(periods)), np.nan)
    for j, p in enumerate(periods):
        cols = (year >= p.start) & (year <= p.end)
        if cols.any():
            block = data[:, cols]
            n = np.sum(~np.isnan(block), axis=1)
            out[:, j] = np.where(n > 0, np.nansum(block, axis=1) / np.maximum(n, 1), np.nan)
    return out


def normalise_units(cube: xr.Dataset) -> xr.Dataset:
    """The cube's tas/tasmin/tasmax/pr/hurs in the units of the observed cube (degC, mm d-1, %)."""
    out = cube.copy()
    for name, target in INPUT_UNITS.items():
        if name in out and out[name].attrs.get("units") != target:
            converted = convert_units_to(out[name], target, context="hydro")
            out[name] = converted.assign_attrs({**cube[name].attrs, "units": target})
    return out


def period_values(
    cube: xr.Dataset,
    specs: Sequence[IndicatorSpec],
    periods: Sequence[Period],
    baseline: Period,
    scheduler: str | None = None,
) -> dict[str, np.ndarray]:
    """Per indicator, the (site, period) means of its annual values over `periods` (same code as the
    observed pipeline: `monitor.compute.compute`). Indicators whose inputs the cube lacks are left out."""
    out = {}
    for spec in specs:
        if any(v not in cube for v in spec.inputs):
            continue
        values = compute(spec.id, cube, scheduler, **indicator_params(spec, baseline))
        out[spec.id] = period_means(annual_values(spec, values), periods)
    return out


# --- bias adjustment --------------------------------------------------------------------------------


def bias_adjust(
    cube: xr.Dataset, reference: xr.Dataset, baseline: Period, nquantiles: int = 50
) -> tuple[xr.Dataset, dict]:
    """The cube with tas/tasmin/tasmax/pr adjusted by Empirical Quantile Mapping (xsdba), per calendar month,
    trained on the cube's baseline years against `reference` (observed daily values at the same sites, e.g.
    ERA5-Land), additive for temperatures, multiplicative for precipitation; and a provenance dict.

    The reference is put on the model's calendar first (days dropped evenly for 360_day, 29 February for
    noleap). Precipitation below 0.01 mm/d is jittered before training (xsdba's usual treatment of dry days)
    and set back to 0 after.
    """
    import xsdba

    calendar = cube["time"].dt.calendar
    ref_years = reference["time"].dt.year
    ref = reference.sel(time=(ref_years >= baseline.start) & (ref_years <= baseline.end))
    if ref.sizes.get("time", 0) == 0:
        raise ProjectionError(
            f"bias adjustment needs observed daily values in the baseline {baseline.label}; none are stored"
        )
    ref = normalise_units(to_calendar(ref, calendar))
    years = ref["time"].dt.year.values
    used = Period(int(years.min()), int(years.max()))
    hist_years = cube["time"].dt.year
    hist = cube.sel(time=(hist_years >= used.start) & (hist_years <= used.end))
    out = cube.copy()
    for name, kind in ADJUSTED.items():
        if name not in cube or name not in ref:
            continue
        r, h, s = ref[name].astype(float), hist[name].astype(float), cube[name].astype(float)
        r = r.assign_attrs(units=INPUT_UNITS[name])
        h, s = h.assign_attrs(units=INPUT_UNITS[name]), s.assign_attrs(units=INPUT_UNITS[name])
        if kind == "*":
            r, h, s = (xsdba.processing.jitter_under_thresh(x, thresh="0.01 mm d-1") for x in (r, h, s))
        eqm = xsdba.EmpiricalQuantileMapping.train(r, h, nquantiles=nquantiles, group="time.month", kind=kind)
        adjusted = eqm.adjust(s, extrapolation="constant", interp="nearest")
        if kind == "*":
            adjusted = adjusted.where(adjusted >= 0.01, 0.0)
        out[name] = adjusted.transpose(*cube[name].dims).assign_attrs(cube[name].attrs)
    provenance = {
        "method": "eqm",
        "description": "Empirical Quantile Mapping (xsdba), per calendar month, "
        f"{nquantiles} quantiles; additive for tas/tasmin/tasmax, multiplicative for pr",
        "reference": str(reference.attrs.get("source", "era5_land")),
        "reference_product": str(reference.attrs.get("product", "")),
        "reference_period": used.label,
        "xsdba_version": xsdba.__version__,
    }
    return out, provenance


def to_calendar(ds: xr.Dataset, calendar: str) -> xr.Dataset:
    """A daily cube on a Gregorian axis (datetime64 or cftime) put on `calendar` (cftime dates).

    Whole years are kept: `360_day` takes, for day i of a model year, the Gregorian day
    floor(i · days-in-year / 360) of that year; `noleap`/`365_day` drop 29 February; `standard` keeps
    every day. Missing Gregorian days are NaN.
    """
    time = ds.indexes["time"]
    first, last = int(time.min().year), int(time.max().year)
    stamps = pd.DatetimeIndex([pd.Timestamp(t.year, t.month, t.day) for t in time])
    full = pd.date_range(f"{first:04d}-01-01", f"{last:04d}-12-31", freq="D")
    return from_gregorian(ds.assign_coords(time=stamps).reindex(time=full), calendar, first, last)


# --- records ------------------------------------------------------------------------------------------


def _levels(spec: IndicatorSpec, sites: SiteSet, site_ids: Sequence[str], values: np.ndarray):
    """Level codes and deciding material names of (site, n) values."""
    from monitor.pipeline import site_levels

    codes, decider = site_levels(spec, sites, site_ids, values)
    names = np.array([*spec.materials, None], dtype=object)
    return codes, names[decider]


def run_records(
    spec: IndicatorSpec,
    sites: SiteSet,
    means: np.ndarray,
    baseline: Period,
    futures: Sequence[Period],
    head: dict[str, Any],
) -> pd.DataFrame:
    """The per-model rows of one indicator: baseline, future, change (and change_pct) per site and period.

    `means` is (site, 1 + len(futures)) with the baseline first; `head` gives dataset, model, scenario,
    bias_method, provenance, attribution and synthetic.
    """
    ids = sites.ids
    codes, materials = _levels(spec, sites, ids, means)
    rows = []
    pct = is_precipitation_amount(spec)
    for i, site_id in enumerate(ids):
        base = means[i, 0]
        rows.append(_row(site_id, spec, baseline, "baseline", base, codes[i, 0], materials[i, 0], head))
        for j, p in enumerate(futures, start=1):
            value = means[i, j]
            rows.append(_row(site_id, spec, p, "future", value, codes[i, j], materials[i, j], head))
            rows.append(_row(site_id, spec, p, "change", value - base, None, None, head))
            if pct:
                rel = 100.0 * (value - base) / base if base and np.isfinite(base) else np.nan
                rows.append(_row(site_id, spec, p, "change_pct", rel, None, None, head, units="%"))
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def _row(site_id, spec, period, statistic, value, level, material, head, units=None) -> dict:
    value = None if value is None or not np.isfinite(value) else float(value)
    return {
        "site_id": site_id,
        "indicator_id": spec.id,
        "dataset": head["dataset"],
        "model": head["model"],
        "scenario": head["scenario"],
        "period_start": period.start,
        "period_end": period.end,
        "statistic": statistic,
        "value": value,
        "level": None if level is None else int(level),
        "material": material,
        "units": units or spec.units,
        "bias_method": head["bias_method"],
        "provenance": head["provenance"]
        | {"indicator_version": spec.version, "annual": annual_statistic(spec)},
        "attribution": head["attribution"],
        "synthetic": bool(head["synthetic"]),
    }


def ensemble_records(model_rows: pd.DataFrame, sites: SiteSet) -> pd.DataFrame:
    """Ensemble rows (model `ensemble`) of per-model rows of one dataset and scenario: per site, indicator,
    period and statistic the median, min and max across models, the model count, and the levels of the
    baseline and future aggregates."""
    if model_rows.empty:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    frame = model_rows.sort_values(["site_id", "indicator_id", "model", "period_start", "statistic"])
    frame = frame.reset_index(drop=True)
    frame["value"] = frame["value"].astype(float)
    keys = ["site_id", "indicator_id", "period_start", "period_end", "statistic"]
    stats = frame.groupby(keys, sort=True)["value"].agg(["median", "min", "max", "count"]).reset_index()
    meta = {}  # (site, indicator) → (first row, provenance shared by the ensemble)
    for key, part in frame.groupby(["site_id", "indicator_id"], sort=True):
        per_model = [dict(p) for p in part.drop_duplicates("model")["provenance"]]
        ref = part.iloc[0]
        shared = {k: v for k, v in per_model[0].items() if k not in ("model", "calendar", "member", "splice")}
        meta[key] = (
            ref,
            shared
            | {
                "models": sorted(set(part["model"])),
                "calendars": sorted({str(p.get("calendar", "")) for p in per_model}),
                "splice": sorted({str(p.get("splice", "")) for p in per_model} - {""}),
            },
        )
    attribution = " ".join(sorted(set(frame["attribution"])))
    synthetic = bool(frame["synthetic"].any())
    head = frame.iloc[0]
    rows = []
    for spec_id, part in stats.groupby("indicator_id", sort=True):
        spec = indicators.get(spec_id)
        part = part.reset_index(drop=True)
        values = part[["median", "min", "max"]].to_numpy(dtype=float)
        level_of = part["statistic"].isin(["baseline", "future"]).to_numpy()
        codes, materials = _levels(spec, sites, list(part["site_id"]), values)
        for k, r in enumerate(part.itertuples(index=False)):
            ref, provenance = meta[(r.site_id, spec_id)]
            base = {
                "site_id": r.site_id,
                "indicator_id": spec_id,
                "dataset": head["dataset"],
                "model": ENSEMBLE,
                "scenario": head["scenario"],
                "period_start": int(r.period_start),
                "period_end": int(r.period_end),
                "units": ref["units"] if r.statistic != "change_pct" else "%",
                "bias_method": ref["bias_method"],
                "provenance": provenance,
                "attribution": attribution,
                "synthetic": synthetic,
            }
            for a, agg in enumerate(AGGREGATES):
                value = values[k, a]
                rows.append(
                    base
                    | {
                        "statistic": f"{r.statistic}_{agg}",
                        "value": float(value) if np.isfinite(value) else None,
                        "level": int(codes[k, a]) if level_of[k] else None,
                        "material": materials[k, a] if level_of[k] else None,
                    }
                )
            if r.statistic in ("baseline", "future"):
                rows.append(
                    base
                    | {
                        "statistic": "model_count" if r.statistic == "future" else "baseline_model_count",
                        "value": float(r.count),
                        "level": None,
                        "material": None,
                        "units": "1",
                    }
                )
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


# --- the whole computation ---------------------------------------------------------------------------


@dataclass
class ProjectionReport:
    """What one computation did."""

    runs: list[str] = field(default_factory=list)
    values_written: int = 0
    alerts_raised: int = 0
    alerts_resolved: int = 0
    failed: list[str] = field(default_factory=list)


def compute_projections(
    settings: Settings,
    store: Store,
    source: Any,
    sites: SiteSet,
    reference: xr.Dataset | None = None,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> ProjectionReport:
    """Compute and store the projected indicators of every run of `source` at `sites`, their ensembles per
    scenario and the projected alerts. Rerunning over the same data changes nothing stored.

    `reference` (observed daily tas/tasmin/tasmax/pr at the sites, e.g. from the `VariableStore`) is needed
    when `settings.projections_bias_adjust` is `eqm`.
    """
    baseline, futures = configured_periods(settings)
    periods = [baseline, *futures]
    first, last = min(p.start for p in periods), max(p.end for p in periods)
    method = settings.projections_bias_adjust
    if method == "eqm" and reference is None:
        raise ProjectionError("bias adjustment (eqm) needs the observed daily variables of the sites")
    report = ProjectionReport()
    computed: dict[tuple[str, str], pd.DataFrame] = {}
    for run in source.runs():
        name = f"{run.model} {run.scenario}"
        if progress:
            progress(name)
        try:
            cube = normalise_units(source.fetch(sites, run, first, last))
            bias = {"method": "none", "description": "changes against the model's own baseline"}
            if method == "eqm":
                cube, bias = bias_adjust(cube, reference.sel(site=list(sites.ids)), baseline)
            specs = projected_indicators(cube.data_vars)
            means = period_values(cube, specs, periods, baseline, settings.dask_scheduler)
        except Exception as exc:  # one failing run must not stop the others; it is reported
            log.warning("projection run %s failed: %s", name, exc)
            report.failed.append(f"{name}: {exc}")
            continue
        head = _head(cube, run, bias, baseline)
        frames = [run_records(indicators.get(i), sites, m, baseline, futures, head) for i, m in means.items()]
        computed[(run.dataset, run.model, run.scenario)] = pd.concat(frames, ignore_index=True)
        report.runs.append(name)
    with store.session.begin() as session:
        for (dataset, model, scenario), frame in computed.items():
            report.values_written += replace_projections(session, sites.ids, dataset, model, scenario, frame)
        ensembles = {}
        for dataset, scenario in sorted({(d, s) for d, _, s in computed}):
            stored = stored_values(session, sites.ids, dataset)
            stored = stored[stored["scenario"] == scenario]
            ens = ensemble_records(stored, sites)
            report.values_written += replace_projections(session, sites.ids, dataset, ENSEMBLE, scenario, ens)
            ensembles[(dataset, scenario)] = ens
        if ensembles:
            raised, resolved = evaluate_projected(
                session,
                pd.concat(ensembles.values(), ignore_index=True),
                sites,
                settings.alert_min_level,
                now,
            )
            report.alerts_raised, report.alerts_resolved = raised, resolved
    return report


def _head(cube: xr.Dataset, run: Any, bias: dict, baseline: Period) -> dict[str, Any]:
    a = cube.attrs
    synthetic = a.get("synthetic", False)
    synthetic = synthetic if isinstance(synthetic, bool) else str(synthetic).lower() == "true"
    provenance = {
        "dataset": str(a.get("dataset", run.dataset)),
        "model": run.model,
        "scenario": run.scenario,
        "member": str(a.get("member", getattr(run, "member", ""))),
        "calendar": str(a.get("calendar", cube["time"].dt.calendar)),
        "product": str(a.get("product", "")),
        "product_version": str(a.get("product_version", "")),
        "splice": str(a.get("splice", "")),
        "baseline": baseline.label,
        "bias": bias,
    }
    return {
        "dataset": str(a.get("dataset", run.dataset)),
        "model": run.model,
        "scenario": run.scenario,
        "bias_method": bias["method"],
        "provenance": provenance,
        "attribution": str(a.get("attribution", "")),
        "synthetic": synthetic,
    }


# --- projected alerts ----------------------------------------------------------------------------------


def projected_crossings(ensemble: pd.DataFrame, min_level: str) -> pd.DataFrame:
    """Per (site, indicator), the earliest future period whose ensemble-median level under some scenario is
    above the baseline's median level and at least `min_level` (the worst scenario of that period; ties: the
    first scenario in name order). Columns: site_id, indicator_id, scenario, period_start, period_end, level,
    value, material, baseline_level, baseline_value, dataset, provenance, attribution, synthetic."""
    min_code = LEVEL_CODES[min_level]
    med = ensemble[ensemble["statistic"].isin(["baseline_median", "future_median"])]
    base = med[med["statistic"] == "baseline_median"].set_index(["site_id", "indicator_id", "scenario"])
    fut = med[med["statistic"] == "future_median"].copy()
    if fut.empty:
        return fut
    joined = fut.join(
        base[["level", "value"]].add_prefix("baseline_"), on=["site_id", "indicator_id", "scenario"]
    )
    hits = joined[(joined["level"] >= min_code) & (joined["level"] > joined["baseline_level"].fillna(-1))]
    hits = hits.sort_values(
        ["site_id", "indicator_id", "period_start", "level", "scenario"],
        ascending=[True, True, True, False, True],
    )
    return hits.drop_duplicates(["site_id", "indicator_id"], keep="first")


def evaluate_projected(
    session: Session, ensemble: pd.DataFrame, sites: SiteSet, min_level: str, now: datetime | None = None
) -> tuple[int, int]:
    """Open, update or resolve the projected alerts of these sites and the indicators in `ensemble`; returns
    (opened or escalated, resolved). An alert whose facts are unchanged is left untouched."""
    now = now or utcnow()
    rule = AlertRule(min_level=min_level, kind="projected")
    hits = projected_crossings(ensemble, min_level)
    wanted = {(r.site_id, r.indicator_id): r for r in hits.itertuples(index=False)}
    site_ids, indicator_ids = set(sites.ids), set(ensemble["indicator_id"])
    active = [
        a
        for a in session.scalars(
            select(AlertRow).where(AlertRow.kind == "projected", AlertRow.status.in_(ACTIVE))
        )
        if a.site_id in site_ids and a.indicator_id in indicator_ids
    ]
    by_key = {(a.site_id, a.indicator_id): a for a in active}
    raised = resolved = 0
    for key, alert in sorted(by_key.items()):
        if key not in wanted:
            alert.periods_below = 1
            resolve_episode(
                session,
                alert,
                alert.last_period,
                now,
                note="a recompute of the projections no longer "
                f"shows {rule.min_level} or above above the baseline level",
            )
            resolved += 1
    for key, hit in sorted(wanted.items()):
        spec = indicators.get(hit.indicator_id)
        site = sites[hit.site_id]
        overrides = site.thresholds.get(spec.id)
        facts = _facts(hit)
        row = SimpleNamespace(
            site_id=hit.site_id,
            level=int(hit.level),
            value=hit.value,
            material=hit.material,
            period_start=date(int(hit.period_start), 1, 1),
            source="projections",
            product=str(hit.provenance.get("product", "")),
            product_version=str(hit.provenance.get("product_version", "")),
            synthetic=bool(hit.synthetic),
        )
        note = _note(spec, facts)
        alert = by_key.get(key)
        if alert is None:
            alert = open_episode(
                session,
                spec,
                row,
                rule,
                overrides,
                hit.attribution,
                now,
                onset=row.period_start,
                last_period=date(int(hit.period_end), 1, 1),
                provenance=facts,
                note=note,
            )
            alert.freq = "YS"  # the alert spans whole years: onset year to the period's last year
            raised += 1
            continue
        if _same(alert, row, facts):
            continue
        escalated = row.level > alert.level
        alert.level, alert.value, alert.material = row.level, float_or_none(row.value), row.material
        alert.onset = alert.period_start = row.period_start
        alert.last_period = date(int(hit.period_end), 1, 1)
        alert.threshold = threshold_of(spec, row.level, row.material, overrides)
        alert.product, alert.product_version = row.product, row.product_version
        alert.attribution, alert.provenance, alert.updated_at = hit.attribution, facts, now
        if escalated:
            alert.sequence += 1
            raised += 1
            if alert.status == "acknowledged":
                alert.status = "open"
        session.add(
            AlertEventRow(
                alert_id=alert.id,
                at=now,
                event="escalated" if escalated else "updated",
                level=row.level,
                value=alert.value,
                period_start=row.period_start,
                actor="system",
                note=note,
            )
        )
    return raised, resolved


def _facts(hit) -> dict:
    prov = dict(hit.provenance)
    return {
        "note": PLANNING_NOTE,
        "dataset": str(hit.dataset),
        "scenario": str(hit.scenario),
        "period": {"start": int(hit.period_start), "end": int(hit.period_end)},
        "projected_level": level_name(int(hit.level)),
        "projected_value": float_or_none(hit.value),
        "baseline": prov.get("baseline"),
        "baseline_level": level_name(int(hit.baseline_level)) if pd.notna(hit.baseline_level) else None,
        "baseline_value": float_or_none(hit.baseline_value),
        "statistic": "ensemble median",
        "models": prov.get("models", []),
        "splice": prov.get("splice", []),
        "bias": prov.get("bias", {}),
        "product": prov.get("product", ""),
        "product_version": prov.get("product_version", ""),
        "synthetic": bool(hit.synthetic),
    }


def _note(spec: IndicatorSpec, facts: dict) -> str:
    value = facts["projected_value"]
    units = "" if spec.units == "1" else spec.units
    shown = "–" if value is None else f"{value:.4g} {units}".strip()
    base = facts["baseline_value"]
    base_shown = "–" if base is None else f"{base:.4g} {units}".strip()
    p = facts["period"]
    return (
        f"{PLANNING_NOTE}: {facts['projected_level']} ({shown}, ensemble median of "
        f"{len(facts['models'])} model(s)) projected for {p['start']}–{p['end']} under {facts['scenario']}, "
        f"against {facts['baseline_level']} ({base_shown}) in the baseline {facts['baseline']}"
    )


def _same(alert: AlertRow, row, facts: dict) -> bool:
    return (
        alert.level == row.level
        and alert.value == float_or_none(row.value)
        and alert.material == row.material
        and alert.onset == row.period_start
        and dict(alert.provenance or {}) == facts
    )


# --- one recorded pass (CLI and scheduler) ---------------------------------------------------------------

#: The name of projection passes in `runs`, pass leases and system alerts.
SOURCE_ID = "projections"


def projection_source(settings: Settings) -> Any:
    """The projections source of `HM_PROJECTIONS_MODE` (the demo source when the data-access module is
    absent from an installation)."""
    try:
        from monitor.sources.projections import make_projection_source
    except ImportError:
        from monitor.sources.synthetic_projections import SyntheticProjections

        return SyntheticProjections(settings)
    return make_projection_source(settings)


def sites_without_projections(store: Store, added_after: datetime | None = None) -> list[str]:
    """Ids of the sites with no stored projection, optionally only those registered after `added_after`
    (sites added since the last projection pass, so a site whose projection failed waits for the next
    regular pass instead of being retried at every check)."""
    from monitor.store.projections import ProjectionValueRow
    from monitor.store.tables import SiteRow

    have = select(ProjectionValueRow.site_id).distinct()
    q = select(SiteRow.id).where(SiteRow.id.not_in(have)).order_by(SiteRow.id)
    if added_after is not None:
        q = q.where(SiteRow.created_at > added_after)
    with store.session() as s:
        return list(s.scalars(q))


def projection_pass(pipeline: Any, sites: SiteSet, progress: Callable[[str], None] | None = None) -> Any:
    """One pass of the projections over `sites`, as `heritage-monitor projections` and the scheduler run it:
    under the `projections` pass lease and time budget (`monitor.scheduler.guarded_pass`), recorded in `runs`
    (status ok, partial when some model runs failed, failed when none succeeded or the source cannot be
    used), with a `source_failure` system alert while passes fail. Returns a `SourceRunResult`; stored
    projections are only replaced by the model runs that succeeded."""
    from monitor.pipeline import SourceRunResult
    from monitor.scheduler import guarded_pass

    if not sites:
        return SourceRunResult(SOURCE_ID, "skipped", error="no sites registered")
    return guarded_pass(pipeline, SOURCE_ID, lambda worker: _recorded_pass(worker, sites, progress))


def _recorded_pass(worker: Any, sites: SiteSet, progress: Callable[[str], None] | None) -> Any:
    from monitor.pipeline import SourceRunResult
    from monitor.scheduler import PassCancelledError

    settings, store = worker.settings, worker.store
    token = getattr(worker, "cancel", None)
    try:
        baseline, futures = configured_periods(settings)
        first, last = min(p.start for p in [baseline, *futures]), max(p.end for p in [baseline, *futures])
        start, end = date(first, 1, 1), date(last, 12, 31)
    except ProjectionError:
        start = end = None
    run_id = store.start_run(SOURCE_ID, settings.projections_mode, start, end, len(sites))
    result = SourceRunResult(SOURCE_ID, "running", run_id, start, end)

    def step(name: str) -> None:  # between model runs: a pass given up on stops here
        if token is not None:
            token.check()
        if progress:
            progress(name)

    try:
        reference = None
        if settings.projections_bias_adjust == "eqm":
            from monitor.store.variables import VariableStore

            reference = VariableStore(settings.data_dir / "variables").read(
                "era5_land", sites.ids, variables=["tas", "tasmin", "tasmax", "pr"]
            )
        report = compute_projections(
            settings, store, projection_source(settings), sites, reference, progress=step
        )
    except PassCancelledError:
        raise
    except Exception as exc:  # a source that cannot be used or a refused computation: recorded, not raised
        log.warning("projection pass failed: %s", exc)
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        result.values_written, result.alerts_raised = report.values_written, report.alerts_raised
        if report.failed:
            result.status = "partial" if report.runs else "failed"
            result.error = "\n".join(report.failed)[:4000]
        else:
            result.status = "ok"
    store.finish_run(run_id, result.status, result.values_written, result.alerts_raised, result.error)
    return result
