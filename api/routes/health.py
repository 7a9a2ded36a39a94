"""Liveness, readiness, Prometheus metrics and pipeline runs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from api.auth import ReaderDep
from api.deps import PageDep, SettingsDep, StoreDep
from api.errors import ALL_ERRORS
from api.schemas import RunPublic
from monitor.scheduler import PROJECTIONS, open_system_alerts, projections_freshness
from monitor.settings import SOURCE_IDS
from monitor.sources import SOURCES
from monitor.store.repository import Store

router = APIRouter(tags=["operations"], responses=ALL_ERRORS)


def freshness_detail(store: Store, settings) -> dict[str, dict]:
    """Per source: mode, newest data day, its age in days, and whether it is older than expected."""
    fresh = store.freshness()
    today = datetime.now(UTC).date()
    out = {}
    for source_id, info in SOURCES.items():
        f = fresh.get(source_id, {})
        newest: date | None = f.get("newest_data")
        age = (today - newest).days if newest else None
        out[source_id] = {
            "mode": settings.source_mode(source_id),
            "newest_data": newest.isoformat() if newest else None,
            "age_days": age,
            "expected_latency_days": info.latency_days,
            "stale": bool(info.variables) and (age is None or age > info.latency_days + 1),
            "last_successful_run": f.get("last_successful_run").isoformat()
            if f.get("last_successful_run")
            else None,
        }
    proj = projections_freshness(store, settings)
    out[PROJECTIONS] = {  # a pass per schedule (monthly by default), not daily data: stale only when overdue
        "mode": proj["mode"],
        "newest_data": None,
        "age_days": None,
        "expected_latency_days": None,
        "stale": proj["stale"],
        "last_successful_run": proj["last_successful_run"].isoformat()
        if proj["last_successful_run"]
        else None,
        "schedule": proj["schedule"],
    }
    return out


@router.get("/health", summary="Liveness, with each source's data freshness")
def health(store: StoreDep, settings: SettingsDep) -> dict:
    """The process is alive; `sources` says how fresh each source's data is (stale data is not unhealthy)."""
    return {
        "status": "ok",
        "sources": freshness_detail(store, settings),
        "systemAlerts": open_system_alerts(store),  # kind "system": about sources, never site alerts
    }


@router.get("/ready", summary="Readiness: the database answers")
def ready(request: Request, store: StoreDep) -> Response:
    """Ready when the database is reachable (and, in the scheduler's process, the scheduler is alive)."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None and not scheduler.running:
        return JSONResponse({"status": "unavailable", "scheduler": "stopped"}, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})


class _StoreCollector:
    def __init__(self, store: Store, settings) -> None:
        self.store, self.settings = store, settings

    def collect(self):
        age = GaugeMetricFamily(
            "heritage_source_data_age_days", "Days since the newest stored data", labels=["source"]
        )
        stale = GaugeMetricFamily(
            "heritage_source_stale", "1 when a source's data is older than expected", labels=["source"]
        )
        for source_id, f in freshness_detail(self.store, self.settings).items():
            if f["age_days"] is not None:
                age.add_metric([source_id], f["age_days"])
            stale.add_metric([source_id], 1.0 if f["stale"] else 0.0)
        yield age
        yield stale
        alerts = GaugeMetricFamily("heritage_alerts", "Alerts by status", labels=["status"])
        for status in ("open", "acknowledged", "resolved"):
            alerts.add_metric([status], self.store.list_alerts(status=status, limit=1)[1])
        yield alerts
        system = GaugeMetricFamily(
            "heritage_system_alerts_open", "Open system alerts (e.g. stale sources)", labels=["source"]
        )
        counts: dict[str, int] = {}
        for a in open_system_alerts(self.store):
            counts[a["source"]] = counts.get(a["source"], 0) + 1
        for source_id in (*SOURCES, PROJECTIONS):
            system.add_metric([source_id], float(counts.get(source_id, 0)))
        yield system
        sites = GaugeMetricFamily("heritage_sites", "Registered sites")
        sites.add_metric([], self.store.list_sites(limit=1)[1])
        yield sites


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(store: StoreDep, settings: SettingsDep) -> Response:
    registry = CollectorRegistry()
    registry.register(_StoreCollector(store, settings))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


SourceQuery = Annotated[
    Literal[(*SOURCE_IDS, PROJECTIONS)] | None,  # type: ignore[valid-type]
    Query(description="Only the runs of this source", examples=["era5_land"]),
]


@router.get("/api/v1/runs", summary="Pipeline runs, newest first", tags=["runs"])
def list_runs(
    store: StoreDep,
    settings: SettingsDep,
    _: ReaderDep,
    page: PageDep,
    source: SourceQuery = None,
) -> dict:
    """Run history with per-source status and data freshness."""
    rows, total = store.list_runs(source, page.limit, page.offset)
    return {
        "numberMatched": total,
        "numberReturned": len(rows),
        "runs": [RunPublic.from_row(r).model_dump(mode="json") for r in rows],
        "sources": freshness_detail(store, settings),
        "systemAlerts": open_system_alerts(store),
    }
