"""The schedules: one APScheduler 3 job per source, each a pipeline pass since the source's watermark.

Cadences are settings (`HM_SCHEDULE_<SOURCE>`): `daily@HH:MM` (UTC, after the product's release),
`monthly@D HH:MM` (UTC, day D of each month), `<N>h` / `<N>m` / `<N>s` (interval), `onchange@<N>m` (a
pass when a file under the source's local path changed, checked every N minutes) or `off`. Jobs are
registered at every start (replace_existing, coalesce, max_instances=1, misfire grace) and referenced as
"module:function" strings; the thread pool has a thread for every job, so a hung source never delays
another source or the lease heartbeat.

Exactly one scheduler runs per database: `start()` takes the lease of `monitor.lease` (PostgreSQL
advisory lock, or a lease row renewed by a heartbeat job); without it the scheduler does not start.
Losing the lease stops the scheduler (so `/ready` of its process answers 503).

Climate projections change rarely: a pass over every site at `HM_SCHEDULE_PROJECTIONS` (monthly by
default), and an hourly check that passes over the sites added since the last projection pass that have no
projection yet. Both run `monitor.projections.projection_pass`, as `heritage-monitor projections` does.

Every pass of a source (scheduled, or `heritage-monitor run`) goes through `guarded_pass`: it holds the
source's pass lease, runs within `HM_SOURCE_TIME_BUDGET_SECONDS`, and opens (or resolves) a
`source_failure` system alert. SIGTERM lets running passes finish their current chunk (for at most
`HM_SCHEDULER_STOP_GRACE_SECONDS`), then releases the lease and exits.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select, update

from monitor.lease import Lease, hold_pass, mark_interrupted_runs, system_alerts
from monitor.settings import Settings, get_settings
from monitor.sources import SOURCES

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline, SourceRunResult

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
FRESHNESS = "source_freshness"
FAILURE = "source_failure"
#: Threads of the scheduler's pool: one per possible job (every source, the two projection jobs,
#: deliveries, freshness, lease).
POOL_SIZE = len(SOURCES) + 5
PROJECTIONS = "projections"
#: How often the scheduler looks for sites added since the last projection pass.
NEW_SITES_CHECK_MINUTES = 60

#: The lease of each running scheduler, by owner id (the heartbeat job is referenced by string).
_RUNNING: dict[str, HeritageScheduler] = {}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_schedule(text: str) -> tuple[str, dict] | None:
    """An APScheduler trigger (name, options) for a schedule setting; None for `off`."""
    value = text.strip().lower()
    if value == "off":
        return None
    if m := re.fullmatch(r"daily@(\d{1,2}):(\d{2})", value):
        return "cron", {"hour": int(m[1]), "minute": int(m[2]), "timezone": "UTC"}
    if m := re.fullmatch(r"monthly@(\d{1,2})\s+(\d{1,2}):(\d{2})", value):
        if not 1 <= int(m[1]) <= 28:
            raise ValueError(f"schedule {text!r}: the day of the month must be 1..28 (every month has it)")
        return "cron", {"day": int(m[1]), "hour": int(m[2]), "minute": int(m[3]), "timezone": "UTC"}
    if m := re.fullmatch(r"(?:onchange@)?(\d+)([hms])", value):
        n = int(m[1])
        if n <= 0:
            raise ValueError(f"schedule {text!r}: the interval must be positive")
        return "interval", {{"h": "hours", "m": "minutes", "s": "seconds"}[m[2]]: n}
    raise ValueError(
        f"schedule {text!r}: expected daily@HH:MM, monthly@D HH:MM, <N>h, <N>m, <N>s, onchange@<N>m or off"
    )


def schedule_period(text: str) -> timedelta | None:
    """The longest time between two passes of a schedule (31 days for `monthly@…`); None for `off`."""
    trigger = parse_schedule(text)
    if trigger is None:
        return None
    kind, options = trigger
    if kind == "cron":
        return timedelta(days=31) if "day" in options else timedelta(days=1)
    return timedelta(**{k: v for k, v in options.items()})


def _context(settings: Settings):
    from monitor.pipeline import Pipeline
    from monitor.store.db import make_engine
    from monitor.store.repository import Store
    from monitor.store.variables import VariableStore

    store = Store(make_engine(settings.resolved_database_url))
    return store, Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))


def run_source_job(source_id: str, settings: Settings | None = None) -> None:
    """The job body: one pass of one source, with the process settings (referenced as a string)."""
    settings = settings or get_settings()
    store, pipeline = _context(settings)
    try:
        result = pipeline.run_source(source_id, store.site_set())
        log.info(
            "scheduled pass of %s: %s (%d values, %d alerts)",
            source_id,
            result.status,
            result.values_written,
            result.alerts_raised,
        )
    finally:
        store.engine.dispose()


def changed_since_last_run(settings: Settings, source_id: str, store) -> bool:
    """The cheap check of `onchange` sources: a file under the local path is newer than the last
    successful pass (always True outside local mode or before any pass: the pass itself is cheap)."""
    path = settings.source_path(source_id)
    last = store.freshness().get(source_id, {}).get("last_successful_run")
    if settings.source_mode(source_id) != "local" or path is None or last is None:
        return True
    if not path.exists():
        return False
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    newest = max((p.stat().st_mtime for p in files), default=0.0)
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return newest > last.timestamp()


def run_if_changed_job(source_id: str, settings: Settings | None = None) -> bool:
    """The job of `onchange` sources: a pass only when its local files changed; True when it ran."""
    settings = settings or get_settings()
    store, _ = _context(settings)
    try:
        changed = changed_since_last_run(settings, source_id, store)
    finally:
        store.engine.dispose()
    if changed:
        run_source_job(source_id, settings)
    return changed


def projections_job(settings: Settings | None = None) -> None:
    """The regular projection pass over every site (referenced as a string)."""
    from monitor.projections import projection_pass

    settings = settings or get_settings()
    store, pipeline = _context(settings)
    try:
        result = projection_pass(pipeline, store.site_set())
        log.info(
            "scheduled projection pass: %s (%d values, %d alerts)",
            result.status,
            result.values_written,
            result.alerts_raised,
        )
    finally:
        store.engine.dispose()


def last_projection_pass(store) -> datetime | None:
    """When the latest projection pass started (any status), or None."""
    from sqlalchemy import func

    from monitor.store.tables import RunRow

    with store.session() as s:
        at = s.scalar(select(func.max(RunRow.started_at)).where(RunRow.source == PROJECTIONS))
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


def projections_new_sites_job(settings: Settings | None = None) -> list[str]:
    """A projection pass over the sites added since the last projection pass that have none yet; returns
    their ids (empty: nothing ran). A site whose pass failed waits for the next regular pass."""
    from monitor.projections import projection_pass, sites_without_projections

    settings = settings or get_settings()
    store, pipeline = _context(settings)
    try:
        new = sites_without_projections(store, last_projection_pass(store))
        if new:
            result = projection_pass(pipeline, store.site_set(new))
            log.info("projection pass over %d new site(s): %s", len(new), result.status)
        return new
    finally:
        store.engine.dispose()


def projections_freshness(store, settings: Settings, now: datetime | None = None) -> dict:
    """The projections' state for /health and the freshness check: mode, schedule, last successful pass,
    and `stale` only once a successful pass is older than twice the schedule's period plus
    `HM_FRESHNESS_GRACE_DAYS` (never within its cadence, never when unscheduled)."""
    now = now or utcnow()
    last = store.freshness().get(PROJECTIONS, {}).get("last_successful_run")
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    try:
        period = schedule_period(settings.schedule_projections)
    except ValueError:  # a bad setting is reported when the scheduler starts, not by /health
        period = None
    limit = None if period is None else 2 * period + timedelta(days=settings.freshness_grace_days)
    return {
        "mode": settings.projections_mode,
        "schedule": settings.schedule_projections,
        "last_successful_run": last,
        "stale": bool(limit is not None and last is not None and now - last > limit),
        "limit": limit,
    }


def dispatch_job() -> None:
    """Send the alert deliveries that are due (webhooks, e-mail), apart from any pipeline pass."""
    from monitor.alerts.delivery import dispatch_due
    from monitor.store.db import make_engine
    from monitor.store.repository import Store

    settings = get_settings()
    report = dispatch_due(Store(make_engine(settings.resolved_database_url)), settings)
    log.info("alert deliveries: %s", report)


def heartbeat_job(owner: str) -> None:
    """Renew the scheduler lease; a scheduler that lost it stops."""
    scheduler = _RUNNING.get(owner)
    if scheduler is not None and not scheduler.lease.renew():
        log.error("scheduler lease lost to another process: stopping this scheduler")
        scheduler.shutdown(wait=False)


# ---- system alerts: a source without fresh data -------------------------------------------------
def check_freshness(store, settings: Settings, now: datetime | None = None) -> dict[str, str]:
    """Open (or resolve) a `source_freshness` system alert per source; returns {source: status}.

    A source is judged once it has run at least once: stale when its newest stored day is older than
    its expected latency plus `HM_FRESHNESS_GRACE_DAYS`. System alerts live in `system_alerts`, never
    among site alerts.
    """
    now = now or utcnow()
    today = now.date()
    fresh = store.freshness()
    with store.session() as s:
        ran = {r for (r,) in s.execute(select(_run_source_column()).distinct())}
    out = {}
    with store.session.begin() as session:
        for source_id, info in SOURCES.items():
            if not info.variables or source_id not in ran:
                continue
            newest: date | None = fresh.get(source_id, {}).get("newest_data")
            limit = info.latency_days + settings.freshness_grace_days
            if newest is None or (today - newest).days > limit:
                message = (
                    f"{source_id}: no data since {newest}" if newest else f"{source_id}: no data stored yet"
                ) + f" (expected latency {info.latency_days} d + {settings.freshness_grace_days} d grace)"
                open_system_alert(session, source_id, FRESHNESS, message, newest, now)
                out[source_id] = "open"
            else:
                resolve_system_alert(session, source_id, FRESHNESS, now, newest)
                out[source_id] = "ok"
        proj = projections_freshness(store, settings, now)
        if proj["last_successful_run"] is not None:
            if proj["stale"]:
                since = f"{proj['last_successful_run']:%Y-%m-%d %H:%M} UTC"
                message = (
                    f"{PROJECTIONS}: no successful pass since {since} "
                    f"(schedule {proj['schedule']}; judged after {proj['limit'].days} d)"
                )
                open_system_alert(session, PROJECTIONS, FRESHNESS, message, None, now)
                out[PROJECTIONS] = "open"
            else:
                resolve_system_alert(session, PROJECTIONS, FRESHNESS, now)
                out[PROJECTIONS] = "ok"
    return out


def open_system_alert(session, source: str, indicator: str, message: str, newest, now: datetime) -> None:
    """Open a system alert of (source, indicator), or update the one already open (one episode)."""
    from monitor.store.repository import new_id

    t = system_alerts
    open_id = session.execute(
        select(t.c.id).where(t.c.source == source, t.c.indicator_id == indicator, t.c.status == "open")
    ).scalar()
    if open_id is None:
        session.execute(
            t.insert().values(
                id=new_id("sys"),
                kind="system",
                source=source,
                indicator_id=indicator,
                status="open",
                message=message,
                newest_data=newest,
                opened_at=now,
                updated_at=now,
            )
        )
    else:
        session.execute(
            update(t).where(t.c.id == open_id).values(message=message, newest_data=newest, updated_at=now)
        )


def resolve_system_alert(session, source: str, indicator: str, now: datetime, newest=None) -> None:
    """Resolve the open system alert of (source, indicator), if any."""
    t = system_alerts
    session.execute(
        update(t)
        .where(t.c.source == source, t.c.indicator_id == indicator, t.c.status == "open")
        .values(status="resolved", resolved_at=now, updated_at=now, newest_data=newest)
    )


def _run_source_column():
    from monitor.store.tables import RunRow

    return RunRow.source


def open_system_alerts(store) -> list[dict]:
    """Open system alerts, for /health, /metrics and /api/v1/runs."""
    t = system_alerts
    with store.engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.status == "open").order_by(t.c.source)).mappings().all()
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "source": r["source"],
            "indicator": r["indicator_id"],
            "status": r["status"],
            "message": r["message"],
            "newestData": r["newest_data"].isoformat() if r["newest_data"] else None,
            "openedAt": r["opened_at"].isoformat() if r["opened_at"] else None,
        }
        for r in rows
    ]


def freshness_job(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    store, _ = _context(settings)
    try:
        log.info("source freshness: %s", check_freshness(store, settings))
    finally:
        store.engine.dispose()


# ---- one pass of a source: its lease, time budget and failure alert --------------------------------
class PassCancelledError(TimeoutError):
    """A pass given up on (time budget spent, lease lost, shutdown): it stops before its next write."""


class CancelToken:
    """Set when a pass must stop. The pipeline checks it before each chunk, after each fetch and just
    before each commit, so a pass given up on writes nothing more (its open transaction rolls back)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `PassCancelledError` once cancelled."""
        if self._event.is_set():
            raise PassCancelledError(self.reason)


#: Pass threads given up on that have not ended yet (each stops at its next checkpoint).
ABANDONED: set[threading.Thread] = set()
#: After its budget is spent, a pass between two checkpoints gets this long to stop by itself.
CANCEL_GRACE_SECONDS = 5.0


def guarded_pass(
    pipeline: Pipeline, source_id: str, body: Callable[[Pipeline], SourceRunResult]
) -> SourceRunResult:
    """Run `body`, one pass of `source_id`, under the source's pass lease and within its time budget.

    - Another live process (or thread) already passing over the source: nothing runs, status `busy`.
    - Runs of the source left `running` by a process that is gone are marked `interrupted` first.
    - With `HM_SOURCE_TIME_BUDGET_SECONDS` > 0 the pass runs in its own thread. Past the budget it is
      cancelled and recorded `failed` at once, and the caller goes on even if the source never answers;
      after a stop request (SIGTERM) it gets `HM_SCHEDULER_STOP_GRACE_SECONDS` to finish its chunk,
      else it is recorded `interrupted`. A pass given up on stops before its next write; one caught
      committing its last chunk that ends `ok` after all has its run and system alert recorded as such.
    - A failed pass opens a `source_failure` system alert; the next successful one resolves it.
    """
    from monitor.pipeline import STOP, SourceRunResult

    settings = pipeline.settings
    store = pipeline.store
    token = CancelToken()
    lease = hold_pass(
        store.engine,
        source_id,
        settings.scheduler_lease_ttl_seconds,
        on_lost=lambda: token.cancel("the pass lease of this source was lost to another process"),
    )
    if lease is None:
        log.warning("pass of %s not started: another process is running one", source_id)
        return SourceRunResult(source_id, "busy", error=f"another process is running a pass of {source_id}")
    worker = copy.copy(pipeline)  # its own caches: a pass given up on never touches the caller's
    worker._cache, worker._fetched = {}, {}
    worker.cancel = token
    box: dict = {}
    given_up: list[tuple[str, str]] = []
    settling = threading.Lock()  # the caller gives up and the pass ends one after the other, never both

    def work() -> None:
        try:
            if n := mark_interrupted_runs(store.engine, source_id, held=True):
                log.warning("%d run(s) of %s left running by a gone process marked interrupted", n, source_id)
            box["result"] = body(worker)
        except BaseException as exc:
            box["error"] = exc
        finally:
            try:
                with settling:
                    box["ended"] = True
                    if given_up:  # the caller recorded its outcome already: amend it to what was stored
                        _settle_late(store, source_id, given_up[0], box.get("result"))
            finally:
                lease.release()
                ABANDONED.discard(threading.current_thread())

    budget = settings.source_time_budget_seconds
    if not budget:
        work()
    else:
        thread = threading.Thread(target=work, name=f"pass:{source_id}", daemon=True)
        thread.start()
        try:
            outcome = _wait(thread, budget, settings.scheduler_stop_grace_seconds, STOP)
        except KeyboardInterrupt:
            token.cancel("interrupted from the keyboard")
            raise
        if outcome is not None:
            status, reason = outcome
            token.cancel(reason)
            if status == "failed":
                thread.join(min(CANCEL_GRACE_SECONDS, budget))
            with settling:
                if not box.get("ended"):
                    ABANDONED.add(thread)
                    given_up.append((status, f"{PassCancelledError.__name__}: {reason}"))
                    log.error("pass of %s given up: %s", source_id, reason)
                    run = _close_running(store, source_id, status, given_up[0][1])
                    result = SourceRunResult(source_id, status, error=given_up[0][1], **run)
                    record_outcome(store, result)
                    return result
            thread.join(CANCEL_GRACE_SECONDS)  # it ended meanwhile: only its lease's release is left
    if "error" in box:
        raise box["error"]
    record_outcome(store, box["result"])
    return box["result"]


def _wait(thread: threading.Thread, budget: float, stop_grace: float, stop: threading.Event):
    """Wait for a pass thread: None when it ended, else (status, reason) of giving it up."""
    deadline = time.monotonic() + budget
    stop_deadline = None
    while thread.is_alive():
        now = time.monotonic()
        if stop.is_set() and stop_deadline is None:
            stop_deadline = now + stop_grace
        if stop_deadline is not None and now >= stop_deadline:
            return "interrupted", (
                f"stop requested and the pass did not finish its chunk within {stop_grace:g} s "
                f"(HM_SCHEDULER_STOP_GRACE_SECONDS); {_CANCELLED}"
            )
        if now >= deadline:
            return "failed", (
                f"the pass exceeded its time budget of {budget:g} s (HM_SOURCE_TIME_BUDGET_SECONDS); "
                f"{_CANCELLED}"
            )
        thread.join(min(0.2, deadline - now))
    return None


#: What a pass given up on leaves behind: the cancel token is checked before each write and each commit.
_CANCELLED = "it was cancelled before its next write; chunks it had committed are kept"


def _settle_late(store, source_id: str, given_up: tuple[str, str], done: SourceRunResult | None) -> None:
    """The end of a pass given up on, recorded after the caller's outcome so that the last word is what
    the pass actually committed: one that completed after all (caught between its last check and its
    commit) keeps its own `ok`/`partial` run and resolves the failure alert; any other is given up."""
    if done is not None and done.status in ("ok", "partial"):
        log.warning("pass of %s given up on completed after all (%s): data stored", source_id, done.status)
        record_outcome(store, done)
        return
    _close_running(store, source_id, *given_up, run_id=done.run_id if done else None)


def _close_running(store, source_id: str, status: str, error: str, run_id: str | None = None) -> dict:
    """Record the run of a pass given up on (the one left `running`, under the caller's pass lease)."""
    from monitor.store.tables import RunRow

    where = [RunRow.id == run_id] if run_id else [RunRow.source == source_id, RunRow.status == "running"]
    with store.session.begin() as session:
        row = session.execute(select(RunRow.id, RunRow.period_start, RunRow.period_end).where(*where)).first()
        session.execute(update(RunRow).where(*where).values(status=status, error=error, finished_at=utcnow()))
    return {"run_id": row.id, "start": row.period_start, "end": row.period_end} if row else {}


def record_outcome(store, result: SourceRunResult) -> None:
    """Open a `source_failure` system alert for a failed pass; resolve it after a successful one."""
    now = utcnow()
    try:
        with store.session.begin() as session:
            if result.status == "failed":
                message = f"{result.source}: the last pass failed: {result.error or 'no detail'}"
                open_system_alert(session, result.source, FAILURE, message[:2000], None, now)
            elif result.status in ("ok", "partial"):
                resolve_system_alert(session, result.source, FAILURE, now)
    except Exception as exc:  # the run is recorded already; a missing alert table must not fail it
        log.warning("could not record the system alert of %s: %s", result.source, exc)


# ---- registration --------------------------------------------------------------------------------
def configure(scheduler: BaseScheduler, settings: Settings) -> BaseScheduler:
    """Register (or replace) one job per source at its configured cadence, and the service jobs."""
    grace = settings.scheduler_misfire_grace_seconds
    common = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": grace}
    scheduler.add_job(
        "monitor.scheduler:dispatch_job",
        "interval",
        minutes=1,
        id="alerts:dispatch",
        name="send due alert deliveries",
        **common | {"misfire_grace_time": 300},
    )
    scheduler.add_job(
        "monitor.scheduler:freshness_job",
        "interval",
        hours=1,
        id="system:freshness",
        name="system alerts on stale sources",
        **common,
    )
    for source_id in SOURCES:
        text = getattr(settings, f"schedule_{source_id}", "off")
        trigger = parse_schedule(text)
        if trigger is None:
            continue
        kind, options = trigger
        func = "run_if_changed_job" if text.strip().lower().startswith("onchange") else "run_source_job"
        scheduler.add_job(
            f"monitor.scheduler:{func}",
            kind,
            args=[source_id],
            id=f"source:{source_id}",
            name=f"pass of {source_id} ({text})",
            **options,
            **common,
        )
    trigger = parse_schedule(settings.schedule_projections)
    if trigger is not None:
        kind, options = trigger
        scheduler.add_job(
            "monitor.scheduler:projections_job",
            kind,
            id=f"source:{PROJECTIONS}",
            name=f"projection pass over every site ({settings.schedule_projections})",
            **options,
            **common,
        )
        scheduler.add_job(
            "monitor.scheduler:projections_new_sites_job",
            "interval",
            minutes=NEW_SITES_CHECK_MINUTES,
            id=f"{PROJECTIONS}:new_sites",
            name="projection pass over sites added since the last one",
            **common,
        )
    return scheduler


class HeritageScheduler:
    """Mixin: `start()` takes the lease (and marks runs left `running` as interrupted) or refuses."""

    lease: Lease
    settings: Settings

    def _setup_lease(self, settings: Settings, lease: Lease | None) -> None:
        from monitor.store.db import make_engine

        self.settings = settings
        self.lease = lease or Lease(
            make_engine(settings.resolved_database_url), ttl_seconds=settings.scheduler_lease_ttl_seconds
        )

    def start(self, *args, **kwargs):
        if not self.lease.acquire():
            holder = self.lease.holder()
            raise LeaseError(
                "another scheduler already runs on this database"
                + (f" (lease held by {holder})" if holder else "")
                + "; only one may run at a time"
            )
        _RUNNING[self.lease.owner] = self
        self.add_job(
            "monitor.scheduler:heartbeat_job",
            "interval",
            seconds=max(1.0, self.lease.ttl.total_seconds() / 3),
            args=[self.lease.owner],
            id="scheduler:lease",
            name="renew the scheduler lease",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(max(1, self.lease.ttl.total_seconds())),
        )
        try:
            store, pipeline = _context(self.settings)
            n = pipeline.mark_interrupted()
            store.engine.dispose()
            if n:
                log.warning("%d run(s) left running by a stopped process marked interrupted", n)
        except Exception as exc:  # an unmigrated database: the passes will say so
            log.warning("could not mark interrupted runs: %s", exc)
        try:
            return super().start(*args, **kwargs)  # type: ignore[misc]
        finally:
            if not self.running:  # type: ignore[attr-defined]  # BlockingScheduler returns on shutdown
                self._release()

    def shutdown(self, wait: bool = True):
        try:
            return super().shutdown(wait)  # type: ignore[misc]
        finally:
            self._release()

    def _release(self) -> None:
        _RUNNING.pop(self.lease.owner, None)
        self.lease.release()


class LeaseError(RuntimeError):
    """Another scheduler holds the lease of this database."""


class HeritageBackgroundScheduler(HeritageScheduler, BackgroundScheduler):
    def __init__(self, settings: Settings, lease: Lease | None = None, **options) -> None:
        super().__init__(**options)
        self._setup_lease(settings, lease)

    def start(self, *args, **kwargs):
        """In the API process: without the lease the API serves on, its scheduler stopped (503 on /ready)."""
        try:
            return super().start(*args, **kwargs)
        except LeaseError as exc:
            log.error("scheduler not started: %s", exc)


class HeritageBlockingScheduler(HeritageScheduler, BlockingScheduler):
    def __init__(self, settings: Settings, lease: Lease | None = None, **options) -> None:
        super().__init__(**options)
        self._setup_lease(settings, lease)

    def start(self, *args, **kwargs):
        """In the foreground; SIGTERM lets the running passes finish their chunk, then stops."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            return super().start(*args, **kwargs)
        except LeaseError as exc:
            import typer

            from monitor.cli import err

            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None  # `heritage-monitor scheduler` exits 1
        except KeyboardInterrupt:  # Ctrl-C: the same orderly stop as SIGTERM
            self._on_sigterm()

    def _on_sigterm(self, *_args) -> None:
        """Running passes finish (or roll back) their current chunk, then the lease goes and start() returns.

        Waiting here is bounded: a pass whose source does not answer is given up on after
        `HM_SCHEDULER_STOP_GRACE_SECONDS` (its thread dies with the process, its chunk uncommitted).
        """
        from monitor.pipeline import request_stop

        log.warning("stopping: each running pass finishes its current chunk first")
        request_stop()
        with contextlib.suppress(SchedulerNotRunningError):  # a second SIGTERM while stopping
            self.shutdown(wait=True)


def _executors(options: dict) -> dict:
    """A thread per job: a hung pass never holds back another source, deliveries or the lease heartbeat."""
    options.setdefault("executors", {"default": ThreadPoolExecutor(max_workers=POOL_SIZE)})
    return options


def background(settings: Settings, lease: Lease | None = None, **options) -> BackgroundScheduler:
    """A scheduler running in a thread of the current process (the demo's API process)."""
    scheduler = HeritageBackgroundScheduler(settings, lease, timezone="UTC", **_executors(options))
    return configure(scheduler, settings)  # type: ignore[return-value]


def blocking(settings: Settings, lease: Lease | None = None, **options) -> BlockingScheduler:
    """The scheduler of `heritage-monitor scheduler`, in the foreground."""
    scheduler = HeritageBlockingScheduler(settings, lease, timezone="UTC", **_executors(options))
    return configure(scheduler, settings)  # type: ignore[return-value]


def next_runs(scheduler: BaseScheduler, now: datetime) -> dict[str, datetime | None]:
    """When each job fires next after `now` (for tests and operators: no clock, no sleeping)."""
    out = {}
    for job in scheduler.get_jobs():
        out[job.id] = job.trigger.get_next_fire_time(None, now)
    return out
