"""The schedules: one APScheduler 3 job per source, each a pipeline pass since the source's watermark.

Cadences are settings (`HM_SCHEDULE_<SOURCE>`): `daily@HH:MM` (UTC, after the product's release),
`<N>h` / `<N>m` (interval), `onchange@<N>m` (a pass when a file under the source's local path changed,
checked every N minutes) or `off`. Jobs are registered at every start (replace_existing, coalesce,
max_instances=1, misfire grace) and referenced as "module:function" strings.

Exactly one scheduler runs per database: `start()` takes the lease of `monitor.lease` (PostgreSQL
advisory lock, or a lease row renewed by a heartbeat job); without it the scheduler does not start.
Losing the lease stops the scheduler (so `/ready` of its process answers 503).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select, update

from monitor.lease import Lease, system_alerts
from monitor.settings import Settings, get_settings
from monitor.sources import SOURCES

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
FRESHNESS = "source_freshness"

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
    if m := re.fullmatch(r"(?:onchange@)?(\d+)([hm])", value):
        n = int(m[1])
        if n <= 0:
            raise ValueError(f"schedule {text!r}: the interval must be positive")
        return "interval", {"hours": n} if m[2] == "h" else {"minutes": n}
    raise ValueError(f"schedule {text!r}: expected daily@HH:MM, <N>h, <N>m, onchange@<N>m or off")


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
    from monitor.store.repository import new_id

    now = now or utcnow()
    today = now.date()
    fresh = store.freshness()
    with store.session() as s:
        ran = {r for (r,) in s.execute(select(_run_source_column()).distinct())}
    out = {}
    t = system_alerts
    with store.session.begin() as session:
        for source_id, info in SOURCES.items():
            if not info.variables or source_id not in ran:
                continue
            newest: date | None = fresh.get(source_id, {}).get("newest_data")
            limit = info.latency_days + settings.freshness_grace_days
            stale = newest is None or (today - newest).days > limit
            open_row = session.execute(
                select(t.c.id).where(
                    t.c.source == source_id, t.c.indicator_id == FRESHNESS, t.c.status == "open"
                )
            ).first()
            if stale:
                message = (
                    f"{source_id}: no data since {newest}" if newest else f"{source_id}: no data stored yet"
                ) + f" (expected latency {info.latency_days} d + {settings.freshness_grace_days} d grace)"
                if open_row is None:
                    session.execute(
                        t.insert().values(
                            id=new_id("sys"),
                            kind="system",
                            source=source_id,
                            indicator_id=FRESHNESS,
                            status="open",
                            message=message,
                            newest_data=newest,
                            opened_at=now,
                            updated_at=now,
                        )
                    )
                else:
                    session.execute(
                        update(t)
                        .where(t.c.id == open_row.id)
                        .values(message=message, newest_data=newest, updated_at=now)
                    )
                out[source_id] = "open"
            else:
                if open_row is not None:
                    session.execute(
                        update(t)
                        .where(t.c.id == open_row.id)
                        .values(status="resolved", resolved_at=now, updated_at=now, newest_data=newest)
                    )
                out[source_id] = "ok"
    return out


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

    def _on_sigterm(self, *_args) -> None:
        from monitor.pipeline import request_stop

        request_stop()
        self.shutdown(wait=False)


def background(settings: Settings, lease: Lease | None = None, **options) -> BackgroundScheduler:
    """A scheduler running in a thread of the current process (the demo's API process)."""
    scheduler = HeritageBackgroundScheduler(settings, lease, timezone="UTC", **options)
    return configure(scheduler, settings)  # type: ignore[return-value]


def blocking(settings: Settings, lease: Lease | None = None, **options) -> BlockingScheduler:
    """The scheduler of `heritage-monitor scheduler`, in the foreground."""
    scheduler = HeritageBlockingScheduler(settings, lease, timezone="UTC", **options)
    return configure(scheduler, settings)  # type: ignore[return-value]


def next_runs(scheduler: BaseScheduler, now: datetime) -> dict[str, datetime | None]:
    """When each job fires next after `now` (for tests and operators: no clock, no sleeping)."""
    out = {}
    for job in scheduler.get_jobs():
        out[job.id] = job.trigger.get_next_fire_time(None, now)
    return out
