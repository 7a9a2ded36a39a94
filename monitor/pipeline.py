"""The pipeline: source → variable store → indicators → indicator values → alert episodes.

One pass per source. The values, alert changes and watermarks of a pass are written in one database
transaction, so a pass leaves either the old state or the new one; the Parquet variable store is
idempotent (merge and atomic replace), so a rerun after a crash repairs it.

A pass over a long period (a backfill) is cut into chunks (`HM_BACKFILL_CHUNK`, default a year), each
committed with its watermark and the backfill's progress; rerun with the same dates (or none) after an
interruption, it resumes after the last complete chunk. A run left `running` by a killed process is
marked `interrupted` when the next pass of its source starts (never a live process's run: see
`monitor.lease`). On SIGTERM (or `request_stop()`), the current chunk is finished and the pass stops,
recorded as `interrupted`. Each pass holds its source's pass lease and runs within its time budget
(`monitor.scheduler.guarded_pass`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
import xarray as xr
from sqlalchemy import and_, delete

import indicators
from indicators import IndicatorError, IndicatorSpec, Thresholds
from monitor.alerts.delivery import enqueue
from monitor.alerts.episodes import (
    AlertRule,
    evaluate,
    evaluate_forecast,
    expire_forecasts,
    period_end,
    period_floor,
)
from monitor.compute import compute
from monitor.lease import (
    LeaseHeldError,
    backfill_progress,
    hold_passes,
    lock_shared_indicators,
    mark_interrupted_runs,
    release_all,
)
from monitor.settings import Settings
from monitor.sources import SOURCES, SourceError, attribution, forecast_capable, make_source
from monitor.store.forecasts import ForecastIssue, replace_forecast, stored_issue
from monitor.store.repository import Store, utcnow
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
        """Passes that failed, were interrupted, completed with some indicators failing, or could not
        start because another process was passing over the same source."""
        return [r for r in self.results if r.status in ("failed", "partial", "interrupted", "busy")]

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


def site_levels(
    spec: IndicatorSpec, sites: SiteSet, site_ids: Sequence[str] | np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Level codes and deciding material index (`indicators.classify_site_arrays`) of (site, …) values
    of `site_ids`, from the arrays `sites` keeps of its materials and threshold overrides."""
    rows = sites.positions(site_ids)
    group, sets = sites.threshold_overrides(spec.id)
    has = sites.material_matrix(list(spec.material_levels))
    return indicators.classify_site_arrays(spec, values, has[rows], group[rows], sets)


def forecastable(spec: IndicatorSpec) -> bool:
    """Whether forecast days give an indicator forecast values: daily indicators, and counts of days in a
    month or year where more days are worse (a count only grows as its period goes on, so a count to date
    that reaches a level has reached it for the whole period)."""
    if spec.freq == "D":
        return True
    levels = spec.levels
    return (
        spec.units == "days"
        and not spec.history
        and isinstance(levels, Thresholds)
        and levels.direction == "higher_is_worse"
    )


def forecast_indicators() -> list[IndicatorSpec]:
    """The indicators forecast passes give values: forecastable ones fed by a source issuing forecasts."""
    forecasting = {v for info in SOURCES.values() if info.forecast_days for v in info.variables}
    return [s for s in indicators.catalog() if forecastable(s) and forecasting & set(s.inputs)]


def extend_with_forecast(stored: xr.Dataset, forecast: xr.Dataset) -> xr.Dataset:
    """The stored inputs of an indicator followed by a forecast's valid days after them.

    Variables of the forecast fill those days (per-site ones, such as return-period discharges, broadcast
    over them); variables it lacks are missing there.
    """
    if "site" not in stored.coords or stored.sizes.get("time", 0) == 0:
        wanted = [v for v in forecast.data_vars if v in stored.data_vars] or list(forecast.data_vars)
        return forecast[wanted].drop_vars("lead_days", errors="ignore")
    newest = stored["time"].values.max()
    days = forecast["time"].values[forecast["time"].values > newest]
    times = np.concatenate([stored["time"].values, days])
    out = stored.reindex(time=times)
    for name in out.data_vars:
        if name not in forecast.data_vars or "time" not in out[name].dims:
            continue
        fill = forecast[name].drop_vars("lead_days", errors="ignore").reindex(site=out["site"].values)
        if "time" in fill.dims:
            fill = fill.reindex(time=times)
        attrs = dict(out[name].attrs)
        out[name] = out[name].fillna(fill).assign_attrs(attrs)
    return out


def counts_to_date(
    spec: IndicatorSpec,
    cube: xr.Dataset,
    ends: Sequence[pd.Timestamp],
    params: dict[str, xr.DataArray],
    scheduler: str | None = None,
) -> xr.DataArray:
    """A count of days over its period up to each day of `ends`, as (site, time=ends), in one computation.

    Each end gets its own copy of the sites that sees only the days from its period's start to the end
    (the other days are missing, which a count never counts and which breaks a spell as the end of the
    data does), so each value equals the indicator computed over that slice alone.
    """
    times = pd.DatetimeIndex(cube["time"].values)
    site_ids = [str(s) for s in cube["site"].values]
    copies, firsts = [], []
    for k, end in enumerate(ends):
        first = pd.Timestamp(period_floor(end.date(), spec.freq))
        seen = xr.DataArray((times >= first) & (times <= end), dims="time", coords={"time": cube["time"]})
        copy = cube.assign_coords(site=[f"{k}|{s}" for s in site_ids])
        for name, var in copy.data_vars.items():
            if "time" in var.dims:
                copy[name] = var.where(seen.assign_coords(time=var["time"])).assign_attrs(var.attrs)
        copies.append(copy)
        firsts.append(first)
    stacked = xr.concat(copies, dim="site", data_vars="minimal", coords="minimal", compat="override")
    stacked.attrs = dict(cube.attrs)
    tiled = {
        name: xr.concat([p.assign_coords(site=c["site"].values) for c in copies], dim="site")
        for name, p in params.items()
    }
    out = compute(spec.id, stacked, scheduler, **tiled).transpose("site", "time")
    labels = pd.DatetimeIndex(out["time"].values)
    n = len(site_ids)
    columns = [
        out.isel(site=slice(k * n, (k + 1) * n), time=int(labels.searchsorted(first, side="right")) - 1)
        .drop_vars("time")
        .assign_coords(site=site_ids)
        for k, first in enumerate(firsts)
    ]
    return xr.concat(columns, dim="time").assign_coords(time=list(ends)).transpose("site", "time")


class Pipeline:
    """Runs passes of sources over the registered sites."""

    def __init__(self, settings: Settings, store: Store, variables: VariableStore) -> None:
        self.settings = settings
        self.store = store
        self.variables = variables
        self._cache: dict[tuple, xr.Dataset] = {}
        self._fetched: dict[str, xr.Dataset] = {}
        self.cancel = None  # a `monitor.scheduler.CancelToken` while a guarded pass runs
        if settings.source_mode("glofas") == "demo":  # its return levels take 30 years of discharge
            from monitor.sources import synthetic_land

            synthetic_land.use_cache_dir(settings.data_dir / "cache" / "synthetic")

    def _checkpoint(self) -> None:
        """Stop a pass given up on (time budget spent, lease lost) before it writes anything more."""
        if self.cancel is not None:
            self.cancel.check()

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
        """Runs left `running` by a killed process (of one source, or all) become `interrupted`; a run
        whose process is alive (it holds its source's pass lease) is left alone."""
        return mark_interrupted_runs(
            self.store.engine, source_id, ttl_seconds=self.settings.scheduler_lease_ttl_seconds
        )

    def recompute(
        self, indicator_ids: Sequence[str], site_ids: Sequence[str] | None = None
    ) -> PipelineReport:
        """Recompute indicators over the whole stored record (after a formula or coefficient change).

        Nothing is fetched: the stored source variables are the inputs. Values that did not change are
        not rewritten; changed ones carry the new indicator version.

        It holds its own pass lease and those of the indicator's input sources (a pass of one of them
        writes and judges the same values): `busy` when a live process holds any. Its run always ends
        (`failed` with the error on any exception) and its leases are always released.
        """
        from monitor.scheduler import CancelToken

        lost = "a pass lease of this recompute was lost to another process"
        report = PipelineReport()
        sites = self.store.site_set(site_ids)
        where = variable_sources()
        for indicator_id in indicator_ids:
            spec = indicators.get(indicator_id)
            inputs = sorted({where[v] for v in spec.inputs if v in where})
            marks = [d for source_id in inputs for d in self.store.watermarks(source_id).values()]
            name = f"recompute:{spec.id}"[:40]
            if not marks or not sites:
                report.results.append(SourceRunResult(name, "skipped", error="no stored inputs"))
                continue
            end = max(marks)
            token = CancelToken()
            try:
                leases = hold_passes(
                    self.store.engine,
                    [name, *inputs],
                    self.settings.scheduler_lease_ttl_seconds,
                    on_lost=lambda t=token: t.cancel(lost),
                )
            except LeaseHeldError as exc:
                busy = str(exc)
                error = f"another process is running a pass of {busy}"
                if busy == name:
                    error = "another process recomputes it"
                report.results.append(SourceRunResult(name, "busy", error=error))
                continue
            self._cache.clear()
            self._fetched = {}
            result = SourceRunResult(name, "running", None, None, end)
            outer_cancel, self.cancel = self.cancel, token
            try:
                mark_interrupted_runs(self.store.engine, name, held=True)
                result.run_id = self.store.start_run(name, "recompute", None, end, len(sites))
                with self.store.session.begin() as session:
                    records = self._compute(spec, sites, date(1900, 1, 1), end, None)
                    written = self.store.upsert_values(session, records)
                    rule = AlertRule(self.settings.alert_min_level, self.settings.alert_lookback_days)
                    source_id = where[spec.inputs[0]]
                    raised = evaluate(
                        session, spec, records, sites, rule, attribution(source_id, end.year), end
                    )
                    enqueue(session, settings=self.settings)
                    self._checkpoint()  # a lease lost meanwhile: nothing is committed
                result.status, result.values_written, result.alerts_raised = "ok", written, raised
            except (IndicatorError, ValueError, KeyError, OSError) as exc:
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug ends this run as failed, never leaves it "running"
                log.exception("recompute of %s failed unexpectedly", spec.id)
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
            except BaseException as exc:  # an interrupt: the run ends, then it goes on up
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.cancel = outer_cancel
                try:
                    if result.run_id is not None:
                        done = (result.status, result.values_written, result.alerts_raised, result.error)
                        self.store.finish_run(result.run_id, *done)
                finally:
                    release_all(leases)
            report.results.append(result)
        return report

    def _window(
        self, source_id: str, sites: SiteSet, start: date | None, end: date | None
    ) -> tuple[date, date]:
        """[start, end] of a pass: by default from the day after the sites' oldest watermark (or the
        first day of the demo years when a site has none) to the source's latest day."""
        end = end or default_end(self.settings, source_id)
        if start is None:
            oldest = self.store.oldest_watermark(source_id, sites.ids)
            if oldest is not None:
                start = oldest + timedelta(days=1)
            else:
                start = date(end.year - self.settings.demo_years + 1, 1, 1)
        return start, end

    def run_source(
        self, source_id: str, sites: SiteSet, start: date | None = None, end: date | None = None
    ) -> SourceRunResult:
        """Fetch, store and evaluate one source over [start, end] (default: since its watermark).

        The period is processed in chunks, each committed with its watermark; an interrupted backfill
        rerun with the same dates (or none) resumes after its last complete chunk. One pass per source
        at a time across processes, within `HM_SOURCE_TIME_BUDGET_SECONDS` (see `guarded_pass`).
        """
        if not sites:
            return SourceRunResult(source_id, "skipped", error="no sites registered")
        from monitor.scheduler import guarded_pass

        return guarded_pass(self, source_id, lambda p: p._pass(source_id, sites, start, end))

    def _pass(self, source_id: str, sites: SiteSet, start: date | None, end: date | None) -> SourceRunResult:
        origin, start, end = self._resume(source_id, sites, start, end)
        if start > end:
            return self._catch_up_forecast(source_id, sites, start, end)
        try:
            source = make_source(source_id, self.settings)
        except SourceError as exc:
            return SourceRunResult(source_id, "skipped", start=start, end=end, error=str(exc))
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
                self._checkpoint()
                self._chunk(source_id, source, sites, (first, last), origin, end, final, result, problems)
            else:
                newest = end == default_end(self.settings, source_id)
                if self.settings.forecasts and newest and forecast_capable(source):
                    self._checkpoint()
                    self._forecast(source_id, source, sites, end, result, problems)
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
            oldest = self.store.oldest_watermark(source_id, sites.ids)  # every site got the chunks done
            if oldest is not None and oldest >= row.done_through:
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
        self._checkpoint()  # a fetch that outlived its pass's budget stores nothing
        self._fetched = {source_id: cube}
        coverage = cube.get("coverage", None)
        self.variables.write(source_id, cube.drop_vars("coverage", errors="ignore"))
        rule = AlertRule(self.settings.alert_min_level, self.settings.alert_lookback_days)
        attribution_text = self._attribution(cube, source_id, final_end)
        with self.store.session.begin() as session:
            lock_shared_indicators(session, [spec.id for spec in self._affected(source_id)])
            computed: list[tuple[IndicatorSpec, pd.DataFrame]] = []
            for spec in self._affected(source_id):
                if chunked and spec.history and not final:
                    continue
                first = origin if spec.history else start
                try:
                    computed.append((spec, self._compute(spec, sites, first, end, coverage)))
                except (IndicatorError, ValueError, KeyError) as exc:  # one indicator never stops the rest
                    log.warning("indicator %s failed on %s: %s", spec.id, source_id, exc)
                    problems.append(f"{spec.id}: {type(exc).__name__}: {exc}")
            # every indicator's values in one upsert, in the value index's order: the index is walked once
            # per chunk rather than once per indicator (at 100,000 sites it outgrows the page cache)
            result.values_written += self.store.upsert_values(
                session, pd.concat([r for _, r in computed if not r.empty] or [pd.DataFrame()])
            )
            for spec, records in computed:
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
            self._checkpoint()  # last moment to roll the chunk back

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

    def _read(
        self,
        source_id: str,
        sites: SiteSet,
        first: date | None,
        last: date,
        streamed: Sequence[str] | None = None,
    ) -> xr.Dataset:
        """Stored variables of a source, read once per pass and window (indicators share them).

        With `streamed` (the variables wanted), a lazy cube in blocks of `HM_SITES_PER_CHUNK` sites that
        reads only those variables' columns, block by block, when an indicator is computed from it.
        """
        chunk = self.settings.sites_per_chunk if streamed is not None else None
        key = (source_id, tuple(sites.ids), first, last, None if streamed is None else tuple(streamed))
        if key not in self._cache:
            self._cache[key] = self.variables.read(
                source_id, sites.ids, first, last, streamed, sites_per_chunk=chunk
            )
        return self._cache[key]

    def _streams(self, sources: Sequence[str], sites: SiteSet, first: date | None, last: date) -> bool:
        """Whether inputs are read lazily: with a Dask cluster configured, or when the sources' cubes
        (sites × days × variables × 8 bytes, known from the files' metadata) exceed `HM_STREAM_ABOVE_MB`."""
        if self.settings.dask_scheduler:
            return True
        size = sum(self.variables.nbytes(s, len(sites), first, last) for s in sources)
        return size > self.settings.stream_above_mb * 1e6

    def _inputs(self, spec: IndicatorSpec, sites: SiteSet, start: date, end: date) -> xr.Dataset:
        """The stored inputs of an indicator over whole periods covering [start, end]."""
        where = variable_sources()
        first = None if spec.history else period_floor(start, spec.freq)
        last = period_end(end, spec.freq)
        parts = []
        attrs: dict = {}
        needed = [v for v in (*spec.inputs, *spec.optional_inputs) if v in where]
        sources = sorted({where[v] for v in needed})
        streamed = self._streams(sources, sites, first, last)
        for source_id in sources:
            wanted = [v for v in needed if where[v] == source_id]
            stored = self._read(source_id, sites, first, last, wanted if streamed else None)
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
        lon, lat = sites.centroids()[sites.positions(cube.site.values)].T
        return cube.assign_coords(lat=("site", lat), lon=("site", lon))

    def _any_input(
        self, spec: IndicatorSpec, sites: SiteSet, start: date, end: date, cube: xr.Dataset
    ) -> bool:
        """Whether any input of `cube` holds a value. A streamed input is asked of the store (a scan that
        stops at the first value), so the check never reads the whole cube; others are counted."""
        if any(int(cube[v].count()) for v in spec.inputs if cube[v].chunks is None):
            return True
        lazy = [v for v in spec.inputs if cube[v].chunks is not None]
        where = variable_sources()
        first = None if spec.history else period_floor(start, spec.freq)
        last = period_end(end, spec.freq)
        return any(
            self.variables.any_values(s, sites.ids, first, last, [v for v in lazy if where.get(v) == s])
            for s in sorted({where[v] for v in lazy if v in where})
        )

    def _compute(
        self, spec: IndicatorSpec, sites: SiteSet, start: date, end: date, coverage: xr.DataArray | None
    ) -> pd.DataFrame:
        cube = self._inputs(spec, sites, start, end)
        missing = [v for v in spec.inputs if v not in cube]
        if missing or cube.sizes.get("time", 0) == 0 or not self._any_input(spec, sites, start, end, cube):
            return pd.DataFrame()  # nothing to compute from: no values, not zero values
        params = site_parameters(spec, sites, cube.site.values)
        values = compute(spec.id, cube, self.settings.dask_scheduler, **params)  # on the cluster, if set
        values = values.transpose("site", "time")
        values = values.sel(time=slice(pd.Timestamp(period_floor(start, spec.freq)), pd.Timestamp(end)))
        codes, materials = self._classify(spec, sites, values)
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
                "material": materials.ravel(),
                "indicator_version": spec.version,
                "source": cube.attrs.get("source", ""),
                "product": cube.attrs.get("product", ""),
                "product_version": cube.attrs.get("product_version", ""),
                "synthetic": synthetic,
                "coverage": cov,
            }
        )

    @staticmethod
    def _classify(spec: IndicatorSpec, sites: SiteSet, values: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
        """Level codes and deciding material (None: the default levels) of (site, time) values."""
        codes, decider = site_levels(spec, sites, values.site.values, values.values)
        material_names = np.array([*spec.materials, None], dtype=object)
        return codes, material_names[decider]

    # --- forecasts ----------------------------------------------------------------------------------

    def _forecast(
        self,
        source_id: str,
        source,
        sites: SiteSet,
        observed_until: date,
        result: SourceRunResult,
        problems: list[str],
    ) -> None:
        """Fetch the forecast issued at 00 UTC the day after `observed_until`, store its indicator values in
        place of the source's previous issue and advance the forecast episodes, in one transaction. The
        issue already stored is not taken again; a failure is recorded in `problems`."""
        specs = [s for s in self._affected(source_id) if forecastable(s)]
        issued = datetime.combine(observed_until + timedelta(days=1), time(0), tzinfo=UTC)
        with self.store.session() as session:
            stored = stored_issue(session, source_id)
        if stored is not None and _aware(stored.issued) == issued:
            return
        try:
            cube = source.fetch_forecast(sites, issued)
        except (SourceError, OSError, ValueError) as exc:
            log.warning("forecast of %s failed: %s", source_id, exc)
            problems.append(f"forecast: {type(exc).__name__}: {exc}")
            self._checkpoint()
            with self.store.session.begin() as session:
                expire_forecasts(session, [s.id for s in specs], observed_until)
                self._checkpoint()
            return
        self._checkpoint()  # a fetch that outlived its pass's budget stores nothing
        cube = cube.isel(time=np.flatnonzero(cube["time"].values > np.datetime64(observed_until, "ns")))
        computed = []
        for spec in specs:
            try:
                computed.append((spec, *self._forecast_values(spec, sites, cube, observed_until)))
            except (IndicatorError, ValueError, KeyError) as exc:
                log.warning("forecast of indicator %s failed on %s: %s", spec.id, source_id, exc)
                problems.append(f"forecast {spec.id}: {type(exc).__name__}: {exc}")
        records = pd.concat([c[1] for c in computed if not c[1].empty] or [pd.DataFrame()], ignore_index=True)
        days = pd.DatetimeIndex(cube["time"].values).date
        issue = ForecastIssue(
            source=source_id,
            issued=issued,
            observed_until=observed_until,
            first_day=days[0] if len(days) else None,
            last_day=days[-1] if len(days) else None,
            product=str(cube.attrs.get("product", "")),
            product_version=str(cube.attrs.get("product_version", "")),
            synthetic=str(cube.attrs.get("synthetic", "false")).lower() == "true",
            attribution=self._forecast_attribution(cube, source_id, issued),
        )
        rule = AlertRule(self.settings.alert_min_level, self.settings.alert_lookback_days, kind="forecast")
        self._checkpoint()
        with self.store.session.begin() as session:
            replace_forecast(session, issue, records)
            for spec, values, baseline in computed:  # the new issue first: alerts it still shows are updated
                result.alerts_raised += evaluate_forecast(
                    session, spec, values, sites, rule, issue.attribution, issued, observed_until, baseline
                )
            expire_forecasts(session, [s.id for s in specs], observed_until)  # wholly passed ones only
            enqueue(session, settings=self.settings)
            self._checkpoint()  # last moment to roll the forecast step back

    def _catch_up_forecast(self, source_id: str, sites: SiteSet, start: date, end: date) -> SourceRunResult:
        """An up-to-date source whose newest forecast issue is not stored (its forecast step failed or was
        interrupted): take that issue now, as a run of its own; otherwise nothing is done or written."""
        result = SourceRunResult(source_id, "up_to_date", start=start, end=end)
        info = SOURCES[source_id]
        mode = self.settings.source_mode(source_id)
        off = not self.settings.forecasts or not info.forecast_days or mode not in info.forecast_modes
        if off or end != default_end(self.settings, source_id):
            return result
        issued = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
        with self.store.session() as session:
            stored = stored_issue(session, source_id)
        if stored is not None and _aware(stored.issued) == issued:
            return result
        try:
            source = make_source(source_id, self.settings)
        except SourceError:
            return result
        if not forecast_capable(source):
            return result
        run_id = self.store.start_run(source_id, source.mode, None, end, len(sites))
        result = SourceRunResult(source_id, "running", run_id, None, end)
        problems: list[str] = []
        try:
            self._forecast(source_id, source, sites, end, result, problems)
            result.status = "partial" if problems else "ok"
            result.error = "; ".join(dict.fromkeys(problems)) or None
        except Exception as exc:  # a bug must still end the run as failed, never leave it "running"
            log.exception("forecast of %s failed unexpectedly", source_id)
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        self.store.finish_run(run_id, result.status, 0, result.alerts_raised, result.error)
        return result

    def _forecast_values(
        self, spec: IndicatorSpec, sites: SiteSet, forecast: xr.Dataset, observed_until: date
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """Forecast values of one indicator on the valid days of `forecast`, and per site the level a count
        of days had already reached on `observed_until` (the baseline a forecast must exceed)."""
        stored = self._inputs(spec, sites, observed_until, observed_until)
        cube = extend_with_forecast(stored, forecast)
        missing = [v for v in spec.inputs if v not in cube]
        days = pd.DatetimeIndex(forecast["time"].values)
        if missing or cube.sizes.get("time", 0) == 0 or len(days) == 0:
            return pd.DataFrame(), {}
        params = site_parameters(spec, sites, cube.site.values)
        baseline: dict[str, int] = {}
        if spec.freq == "D":
            values = compute(spec.id, cube, self.settings.dask_scheduler, **params).transpose("site", "time")
            values = values.reindex(time=days.to_numpy())
            periods = days.date
        else:  # a count of days in its period, counted to each valid day (observed days, then forecast)
            ends = [pd.Timestamp(observed_until), *days]
            values = counts_to_date(spec, cube, ends, params, self.settings.dask_scheduler)
            codes, _ = self._classify(spec, sites, values.isel(time=[0]))
            baseline = {str(s): int(c) for s, c in zip(values.site.values, codes[:, 0], strict=True)}
            values = values.isel(time=slice(1, None))
            periods = [period_floor(d, spec.freq) for d in days.date]
        codes, materials = self._classify(spec, sites, values)
        n_sites, n_times = values.shape
        issue_day = np.datetime64(observed_until + timedelta(days=1), "D")
        leads = (days.to_numpy().astype("datetime64[D]") - issue_day).astype(int)
        synthetic = str(forecast.attrs.get("synthetic", "false")).lower() == "true"
        coverage = (
            np.repeat(forecast["coverage"].reindex(site=values.site).values.astype(float), n_times)
            if "coverage" in forecast
            else np.full(n_sites * n_times, np.nan)
        )
        frame = pd.DataFrame(
            {
                "site_id": np.repeat(values.site.values.astype(str), n_times),
                "indicator_id": spec.id,
                "valid_day": np.tile(days.date, n_sites),
                "lead_days": np.tile(leads, n_sites),
                "period_start": np.tile(np.array(periods, dtype=object), n_sites),
                "freq": spec.freq,
                "value": values.values.ravel().astype(float),
                "level": codes.ravel().astype(int),
                "material": materials.ravel(),
                "indicator_version": spec.version,
                "source": str(forecast.attrs.get("source", "")),
                "product": str(forecast.attrs.get("product", "")),
                "product_version": str(forecast.attrs.get("product_version", "")),
                "synthetic": synthetic,
                "coverage": coverage,
            }
        )
        return frame, baseline

    @staticmethod
    def _forecast_attribution(cube: xr.Dataset, source_id: str, issued: datetime) -> str:
        info = SOURCES[source_id]
        if str(cube.attrs.get("synthetic", "false")).lower() == "true":
            return (
                f"SYNTHETIC demo forecast standing in for {info.title} ({info.forecast_product}); not "
                f"Copernicus data. Real data would carry: {attribution(source_id, issued.year)}"
            )
        return attribution(source_id, issued.year)


def _aware(moment: datetime) -> datetime:
    """An aware UTC datetime (SQLite returns naive UTC datetimes)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
