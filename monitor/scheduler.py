"""The schedules: one APScheduler 3 job per source, each a pipeline pass since the source's watermark."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from monitor.settings import Settings, get_settings
from monitor.sources import SOURCES

log = logging.getLogger(__name__)

#: Default cadence per source, in hours, matched to the product's release rhythm.
CADENCE_HOURS = {
    "era5_land": 24,
    "cams_europe": 24,
    "sentinel2": 72,
    "cems_fire": 24,
    "glofas": 24,
}


def run_source_job(source_id: str) -> None:
    """The job body: one pass of one source, with the process settings (referenced as a string)."""
    from monitor.pipeline import Pipeline
    from monitor.store.db import make_engine
    from monitor.store.repository import Store
    from monitor.store.variables import VariableStore

    settings = get_settings()
    store = Store(make_engine(settings.resolved_database_url))
    result = Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run_source(
        source_id, store.site_set()
    )
    log.info(
        "scheduled pass of %s: %s (%d values, %d alerts)",
        source_id,
        result.status,
        result.values_written,
        result.alerts_raised,
    )


def dispatch_job() -> None:
    """Send the alert deliveries that are due (webhooks, e-mail), apart from any pipeline pass."""
    from monitor.alerts.delivery import dispatch_due
    from monitor.store.db import make_engine
    from monitor.store.repository import Store

    settings = get_settings()
    report = dispatch_due(Store(make_engine(settings.resolved_database_url)), settings)
    log.info("alert deliveries: %s", report)


def configure(scheduler: BaseScheduler, settings: Settings) -> BaseScheduler:
    """Register (or replace) one interval job per daily source, and the delivery dispatcher."""
    scheduler.add_job(
        "monitor.scheduler:dispatch_job",
        "interval",
        minutes=1,
        id="alerts:dispatch",
        name="send due alert deliveries",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=300,
    )
    for source_id, hours in CADENCE_HOURS.items():
        if source_id not in SOURCES:
            continue
        scheduler.add_job(
            "monitor.scheduler:run_source_job",
            "interval",
            hours=hours,
            args=[source_id],
            id=f"source:{source_id}",
            name=f"pass of {source_id}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
    return scheduler


def background(settings: Settings) -> BackgroundScheduler:
    """A scheduler running in a thread of the current process (the demo's API process)."""
    return configure(BackgroundScheduler(timezone="UTC"), settings)  # type: ignore[return-value]


def blocking(settings: Settings) -> BlockingScheduler:
    """The scheduler of `heritage-monitor scheduler`, in the foreground."""
    return configure(BlockingScheduler(timezone="UTC"), settings)  # type: ignore[return-value]
