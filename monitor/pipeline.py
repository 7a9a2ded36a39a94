"""The pipeline: source → variable store → indicators → indicator values → alert episodes.

One pass per source. The values, alert changes and watermarks of a pass are written in one database
transaction, so a pass leaves either the old state or the new one; the Parquet variable store is
idempotent (merge and atomic replace), so a rerun after a crash repairs it.

A pass over a long period (a backfill) is cut into chunks (`HM_BACKFILL_CHUNK`, default a year), each
committed with its watermark and the backfill's progress; rerun with the same dates (or none) after an
interruption, it resumes after the last complete chunk. A run left `running` by a killed process is
marked `interrupted` when the next pass of its source starts. On SIGTERM (or `request_stop()`), the
current chunk is finished and the pass stops, recorded as `interrupted`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import xarray as xr
from sqlalchemy import and_, delete, update

import indicators
from indicators import IndicatorError, IndicatorSpec
from monitor.alerts.delivery import enqueue
from monitor.alerts.episodes import AlertRule, evaluate, period_end
from monitor.lease import backfill_progress
from monitor.settings import Settings
from monitor.sources import SOURCES, SourceError, attribution, make_source
from monitor.store.repository import Store, utcnow
from monitor.store.tables import RunRow
from monitor.store.variables import VariableStore
from sites import SiteParams, SiteSet

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: Set on SIGTERM (or by `request_stop`): passes finish their current chunk, then stop.
STOP = threading.Event()


def request_stop(*_args) -> None:
    """Ask running passes to stop after their current chunk (a signal handler, or the scheduler)."""
    STOP.set()


@contextlib.contextmanager
def graceful_sigterm():
    """In the main thread: SIGTERM finishes the current chunk instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def chunks(start: date, end: date, size: str) -> list[tuple[date, date]]:
    """[start, end] cut at year (or month) boundaries; `none`: one piece."""
    if size == "none" or start > end:
        return [(start, end)]
    out, first = [], start
    while first <= end:
        if size == "month":
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        else:
            following = date(first.year + 1, 1, 1)
        out.append((first, min(end, following - timedelta(days=1))))
        first = following
    return out


@dataclass
class SourceRunResult:
    """What one pass over one source did."""

    source: str
    status: str  # ok | partial | failed | interrupted | up_to_date | skipped
    run_id: str | None = None
    start: date | None = None
    end: date | None = None
    values_written: int = 0
    alerts_raised: int = 0
    error: str | None = None


@dataclass
class PipelineReport:
    results: list[SourceRunResult] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceRunResult]:
        """Passes that failed, were interrupted, or completed with some indicators failing."""
        return [r for r in self.results if r.status in ("failed", "partial", "interrupted")]

    @property
    def values_written(self) -> int:
        return sum(r.values_written for r in self.results)

    @property
    def alerts_raised(self) -> int:
        return sum(r.alerts_raised for r in self.results)


def default_end(settings: Settings, source_id: str) -> date:
    """Newest day a source can deliver now: yesterday for demo data, else today minus its latency."""
    today = datetime.now(UTC).date()
    if settings.source_mode(source_id) == "demo":
        return settings.demo_end or today - timedelta(days=1)
    return today - timedelta(days=SOURCES[source_id].latency_days)


def variable_sources() -> dict[str, str]:
    """Which source stores each daily variable (the first source that declares it)."""
    out: dict[str, str] = {}
    for info in SOURCES.values():
        for v in info.variables:
            out.setdefault(v, info.id)
    return out


def period_floor(day: date, freq: str) -> date:
    """First day of the period (of frequency `freq`) that contains `day`."""
    if freq == "YS":
        return date(day.year, 1, 1)
    if freq == "MS":
        return date(day.year, day.month, 1)
    return day


def site_parameters(spec: IndicatorSpec, sites: SiteSet, site_ids) -> dict[str, xr.DataArray]:
    """Per-site values of the indicator parameters that are site parameters (rain pH, distance to sea…).

    A site without a value gets the parameter's default, so one vectorised call serves every site.
    """
    out: dict[str, xr.DataArray] = {}
    for name, param in spec.parameters.items():
        if name not in SiteParams.model_fields:
            continue
        values = [getattr(sites[s].params, name) for s in site_ids]
        if all(v is None for v in values):
            continue
        default = np.nan if param.default is None else float(param.default)
        filled = np.array([default if v is None else float(v) for v in values])
        out[name] = xr.DataArray(filled, dims="site", coords={"site": site_ids})
    return out


class Pipeline:
    """Runs passes of sources over the registered sites."""

    def __init__(self, settings: Settings, store: Store, variables: VariableStore) -> None:
        self.settings = settings
        self.store = store
        self.variables = variables
        self._cache: dict[tuple, xr.Dataset] = {}
        self._fetched: dict[str, xr.Dataset] = {}

    def run(
        self,
        sources: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        site_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> PipelineReport:
        """One pass of each source (default: all daily sources); a failing source does not stop others."""
        report = PipelineReport()
        sites = self.store.site_set(site_ids)
        with graceful_sigterm():
            for source_id in sources or [s for s, i in SOURCES.items() if i.variables]:
                if STOP.is_set():
                    report.results.append(SourceRunResult(source_id, "interrupted", error="stop requested"))
                    continue
                if progress:
                    progress(source_id)
                report.results.append(self.run_source(source_id, sites, start, end))
        return report

    def mark_interrupted(self, source_id: str | None = None) -> int:
        """Runs left `running` by a killed process (of one source, or all) become `interrupted`."""
        where = [RunRow.status == "running"]
        if source_id:
            where.append(RunRow.source == source_id)
        with self.store.session.begin() as session:
            res = session.execute(
                update(RunRow)
                .where(*where)
                .values(
                    status="interrupted",
                    finished_at=utcnow(),
                    error="the process ended before the run finished",
                )
            )
        return res.rowcount or 0

    def recompute(
        self, indicator_ids: Sequence[str], site_ids: Sequence[str] | None = None
    ) -> PipelineReport:
        """Recompute indicators over the whole stored record (after a formula or coefficient change).

        Nothing is fetched: the stored source variables are the inputs. Values that did not change are
        not rewritten; changed ones carry the new indicator version.
        """
        report = PipelineReport()
        sites = self.store.site_set(site_ids)
        where = variable_sources()
        for indicator_id in indicator_ids:
            spec = indicators.get(indicator_id)
            marks = [d for v in spec.inputs if v in where for d in self.store.watermarks(where[v]).values()]
            name = f"recompute:{spec.id}"[:40]
            if not marks or not sites:
                report.results.append(SourceRunResult(name, "skipped", error="no stored inputs"))
                continue
            end = max(marks)
            self._cache.clear()
            self._fetched = {}
            run_id = self.store.start_run(name, "recompute", None, end, len(sites))
            result = SourceRunResult(name, "running", run_id, None, end)
            try:
                with self.store.session.begin() as session:
                    records = self._compute(spec, sites, date(1900, 1, 1), end, None)
                    result.values_written = self.store.upsert_values(session, records)
                    rule = AlertRule(self.settings.alert_min_level, self.settings.alert_lookback_days)
                    source_id = where[spec.inputs[0]]
                    result.alerts_raised = evaluate(
                        session, spec, records, sites, rule, attribution(source_id, end.year), end
                    )
                    enqueue(session, settings=self.settings)
                result.status = "ok"
            except (IndicatorError, ValueError, KeyError, OSError) as exc:
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
            self.store.finish_run(
                run_id, result.status, result.values_written, result.alerts_raised, result.error
            )
            report.results.append(result)
        return report

    def _window(
        self, source_id: str, sites: SiteSet, start: date | None, end: date | None
    ) -> tuple[date, date]:
        end = end or default_end(self.settings, source_id)
        if start is None:
            marks = self.store.watermarks(source_id)
            if all(s in marks for s in sites.ids):
                start = min(marks[s] for s in sites.ids) + timedelta(days=1)
            else:
                start = date(end.year - self.settings.demo_years + 1, 1, 1)
        return start, end

    def run_source(
        self, source_id: str, sites: SiteSet, start: date | None = None, end: date | None = None
    ) -> SourceRunResult:
        """Fetch, store and evaluate one source over [start, end] (default: since its watermark).

        The period is processed in chunks, each committed with its watermark; an interrupted backfill
        rerun with the same dates (or none) resumes after its last complete chunk.
        """
        if not sites:
            return SourceRunResult(source_id, "skipped", error="no sites registered")
        origin, start, end = self._resume(source_id, sites, start, end)
        if start > end:
            return SourceRunResult(source_id, "up_to_date", start=start, end=end)
        try:
            source = make_source(source_id, self.settings)
        except SourceError as exc:
            return SourceRunResult(source_id, "skipped", start=start, end=end, error=str(exc))
        self.mark_interrupted(source_id)
        run_id = self.store.start_run(source_id, source.mode, start, end, len(sites))
        result = SourceRunResult(source_id, "running", run_id, start, end)
        pieces = chunks(start, end, self.settings.backfill_chunk)
        problems: list[str] = []
        try:
            for i, (first, last) in enumerate(pieces):
                if STOP.is_set():
                    result.status = "interrupted"
                    result.error = f"stop requested; data stored through {first - timedelta(days=1)}"
                    break
                final = i == len(pieces) - 1
                self._chunk(source_id, source, sites, (first, last), origin, end, final, result, problems)
            else:
                result.status = "partial" if problems else "ok"
                result.error = "; ".join(dict.fromkeys(problems)) or None
        except (SourceError, OSError, ValueError) as exc:
            log.warning("source %s failed: %s", source_id, exc)
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must still end the run as failed, never leave it "running"
            log.exception("source %s failed unexpectedly", source_id)
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        self.store.finish_run(
            run_id, result.status, result.values_written, result.alerts_raised, result.error
        )
        return result

    def _resume(
        self, source_id: str, sites: SiteSet, start: date | None, end: date | None
    ) -> tuple[date, date, date]:
        """(first day of the backfill, first day still to do, last day) of this pass."""
        target = end or default_end(self.settings, source_id)
        t = backfill_progress
        with self.store.session() as session:
            row = session.execute(t.select().where(t.c.source == source_id)).first()
        if row is not None and row.period_end == target and start in (None, row.period_start):
            marks = self.store.watermarks(source_id)  # every site got the chunks already done
            if all(s in marks and marks[s] >= row.done_through for s in sites.ids):
                return row.period_start, row.done_through + timedelta(days=1), target
        start, end = self._window(source_id, sites, start, end)
        return start, start, end

    def _chunk(
        self,
        source_id: str,
        source,
        sites: SiteSet,
        window: tuple[date, date],
        origin: date,
        final_end: date,
        final: bool,
        result: SourceRunResult,
        problems: list[str],
    ) -> None:
        """One chunk: fetch, store variables, then values, alerts, watermarks and progress in one
        transaction. In a multi-chunk backfill, indicators needing history are computed once, at the
        last chunk, over the whole backfill; alerts are judged as one pass up to `final_end` would."""
        start, end = window
        chunked = not (final and start == origin)
        self._cache.clear()
        cube = source.fetch(sites, start, end)
        self._fetched = {source_id: cube}
        coverage = cube.get("coverage", None)
        self.variables.write(source_id, cube.drop_vars("coverage", errors="ignore"))
        rule = AlertRule(self.settings.alert_min_level, self.settings.alert_lookback_days)
        attribution_text = self._attribution(cube, source_id, final_end)
        with self.store.session.begin() as session:
            for spec in self._affected(source_id):
                if chunked and spec.history and not final:
                    continue
                first = origin if spec.history else start
                try:
                    records = self._compute(spec, sites, first, end, coverage)
                except (IndicatorError, ValueError, KeyError) as exc:  # one indicator never stops the rest
                    log.warning("indicator %s failed on %s: %s", spec.id, source_id, exc)
                    problems.append(f"{spec.id}: {type(exc).__name__}: {exc}")
                    continue
                result.values_written += self.store.upsert_values(session, records)
                judged = records
                if chunked and not final and not records.empty:
                    horizon = period_floor(final_end, spec.freq) - timedelta(days=rule.lookback_days)
                    judged = records[records["period_start"] > horizon]
                result.alerts_raised += evaluate(session, spec, judged, sites, rule, attribution_text, end)
            enqueue(session, settings=self.settings)  # deliveries go out later, never blocking the pass
            self.store.set_watermarks(
                session, source_id, sites.ids, end, str(cube.attrs.get("product_version", ""))
            )
            self._record_progress(session, source_id, origin, final_end, end, result.run_id, final)

    @staticmethod
    def _record_progress(session, source_id, origin, final_end, done, run_id, final) -> None:
        t = backfill_progress
        this = and_(t.c.source == source_id, t.c.period_start == origin, t.c.period_end == final_end)
        if final:
            session.execute(delete(t).where(this))
            return
        session.execute(delete(t).where(t.c.source == source_id))
        session.execute(
            t.insert().values(
                source=source_id,
                period_start=origin,
                period_end=final_end,
                done_through=done,
                run_id=run_id,
                updated_at=utcnow(),
            )
        )

    @staticmethod
    def _attribution(cube: xr.Dataset, source_id: str, end: date) -> str:
        if str(cube.attrs.get("synthetic", "false")).lower() == "true":
            return (
                f"SYNTHETIC demo data standing in for {SOURCES[source_id].title}; not Copernicus data. "
                f"Real data would carry: {attribution(source_id, end.year)}"
            )
        return attribution(source_id, end.year)

    @staticmethod
    def _affected(source_id: str) -> list[IndicatorSpec]:
        provided = set(SOURCES[source_id].variables)
        return [s for s in indicators.catalog() if provided & set(s.inputs)]

    def _read(self, source_id: str, sites: SiteSet, first: date | None, last: date) -> xr.Dataset:
        """Stored variables of a source, read once per pass and window (indicators share them)."""
        key = (source_id, tuple(sites.ids), first, last)
        if key not in self._cache:
            self._cache[key] = self.variables.read(source_id, sites.ids, first, last)
        return self._cache[key]

    def _inputs(self, spec: IndicatorSpec, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        """The stored inputs of an indicator over whole periods covering [start, end]."""
        where = variable_sources()
        first = None if spec.history else period_floor(start, spec.freq)
        last = period_end(end, spec.freq)
        parts = []
        attrs: dict = {}
        needed = [v for v in (*spec.inputs, *spec.optional_inputs) if v in where]
        for source_id in sorted({where[v] for v in needed}):
            wanted = [v for v in needed if where[v] == source_id]
            stored = self._read(source_id, sites, first, last)
            part = stored[[v for v in wanted if v in stored]]
            fetched = self._fetched.get(source_id)
            for v in wanted:  # variables with extra dims (histograms) live only in this pass's cube
                if v not in part and fetched is not None and v in fetched:
                    value = fetched[v]
                    if "time" in value.dims:
                        value = value.sel(
                            time=slice(pd.Timestamp(first) if first else None, pd.Timestamp(last))
                        )
                    part[v] = value  # a per-site value (e.g. a return-period threshold) broadcasts over time
            parts.append(part)
            for key in ("source", "product", "product_version", "synthetic"):
                attrs.setdefault(key, []).append(str(part.attrs.get(key, "")))
        cube = xr.merge(parts, join="outer", compat="override", combine_attrs="drop")
        for part in parts:
            for name in part.data_vars:
                cube[name].attrs = dict(part[name].attrs)
        cube.attrs = {k: "+".join(dict.fromkeys(v)) for k, v in attrs.items()}
        if "site" not in cube.coords:  # no stored or fetched input at all
            return cube
        lon, lat = np.array([sites[s].centroid for s in cube.site.values], dtype=float).reshape(-1, 2).T
        return cube.assign_coords(lat=("site", lat), lon=("site", lon))

    def _compute(
        self, spec: IndicatorSpec, sites: SiteSet, start: date, end: date, coverage: xr.DataArray | None
    ) -> pd.DataFrame:
        cube = self._inputs(spec, sites, start, end)
        missing = [v for v in spec.inputs if v not in cube]
        if missing or cube.sizes.get("time", 0) == 0 or all(int(cube[v].count()) == 0 for v in spec.inputs):
            return pd.DataFrame()  # nothing to compute from: no values, not zero values
        values = indicators.compute(spec.id, cube, **site_parameters(spec, sites, cube.site.values))
        values = values.transpose("site", "time")
        values = values.sel(time=slice(pd.Timestamp(period_floor(start, spec.freq)), pd.Timestamp(end)))
        codes, decider = indicators.classify_sites(
            spec,
            values.values,
            [sites[s].materials for s in values.site.values],
            [sites[s].thresholds.get(spec.id) for s in values.site.values],
        )
        material_names = np.array([*spec.materials, None], dtype=object)
        n_sites, n_times = values.shape
        periods = pd.DatetimeIndex(values.time.values).date
        cov = (
            np.repeat(coverage.reindex(site=values.site).values, n_times)
            if coverage is not None
            else np.full(n_sites * n_times, np.nan)
        )
        synthetic = "true" in cube.attrs.get("synthetic", "").lower()
        return pd.DataFrame(
            {
                "site_id": np.repeat(values.site.values.astype(str), n_times),
                "indicator_id": spec.id,
                "period_start": np.tile(periods, n_sites),
                "freq": spec.freq,
                "value": values.values.ravel().astype(float),
                "level": codes.ravel().astype(int),
                "material": material_names[decider.ravel()],
                "indicator_version": spec.version,
                "source": cube.attrs.get("source", ""),
                "product": cube.attrs.get("product", ""),
                "product_version": cube.attrs.get("product_version", ""),
                "synthetic": synthetic,
                "coverage": cov,
            }
        )
