"""The scheduled projection passes: jobs and cadence, the recorded run, new sites, the pass lease, failures
and system alerts (freshness judged against the cadence); on the demo projections source, short periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from monitor import scheduler as sched
from monitor.lease import hold_pass
from monitor.pipeline import Pipeline
from monitor.projections import projection_pass, sites_without_projections
from monitor.sources.base import SourceUnavailableError
from monitor.sources.synthetic_projections import SyntheticProjections
from monitor.store.projections import ProjectionValueRow
from monitor.store.variables import VariableStore
from tests.conftest import make_site

#: Short periods keep a pass at a few seconds.
SHORT = {"projections_baseline": "2001-2002", "projections_periods": "2005-2006", "projections_mode": "demo"}


@pytest.fixture
def tuned(settings):
    return settings.model_copy(update=SHORT)


@pytest.fixture
def sites(store):
    store.upsert_sites([make_site("rome_forum", 12.485, 41.892), make_site("york_minster", -1.082, 53.962)])
    return store.site_set()


def runs(store) -> list[tuple[str, str, int, int, str | None]]:
    rows, _ = store.list_runs(sched.PROJECTIONS)
    return [(r.source, r.status, r.values_written, r.sites, r.error) for r in rows]


def projected_sites(store) -> set[str]:
    with store.session() as s:
        return set(s.scalars(select(ProjectionValueRow.site_id).distinct()))


def system_alerts(store) -> list[tuple[str, str]]:
    return [
        (a["indicator"], a["message"])
        for a in sched.open_system_alerts(store)
        if a["source"] == "projections"
    ]


def test_jobs_cadence_and_schedule_syntax(tuned):
    s = sched.background(tuned)
    jobs = {j.id: j for j in s.get_jobs()}
    full, new = jobs["source:projections"], jobs["projections:new_sites"]
    assert full.func_ref == "monitor.scheduler:projections_job"
    assert new.func_ref == "monitor.scheduler:projections_new_sites_job"
    assert full.coalesce and full.max_instances == 1 and new.max_instances == 1
    nxt = sched.next_runs(s, datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    assert nxt["source:projections"] == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert len(jobs) + 1 <= sched.POOL_SIZE  # + the lease heartbeat added at start
    off = {
        j.id for j in sched.background(tuned.model_copy(update={"schedule_projections": "off"})).get_jobs()
    }
    assert not {"source:projections", "projections:new_sites"} & off
    assert sched.parse_schedule("monthly@15 04:30") == (
        "cron",
        {"day": 15, "hour": 4, "minute": 30, "timezone": "UTC"},
    )
    assert sched.schedule_period("monthly@1 03:00") == timedelta(days=31)
    assert sched.schedule_period("12h") == timedelta(hours=12) and sched.schedule_period("off") is None
    for bad in ("monthly@31 03:00", "monthly@1", "monthly"):
        with pytest.raises(ValueError):
            sched.parse_schedule(bad)


def test_scheduled_pass_is_recorded_and_listed_by_the_runs_api(tuned, store, sites):
    sched.projections_job(tuned)
    [(source, status, written, n_sites, error)] = runs(store)
    assert (source, status, n_sites, error) == ("projections", "ok", 2, None)
    assert written > 0 and projected_sites(store) == {"rome_forum", "york_minster"}
    row = store.list_runs(sched.PROJECTIONS)[0][0]
    assert (row.period_start.year, row.period_end.year, row.mode) == (2001, 2006, "demo")

    sched.projections_job(tuned)  # same data: nothing rewritten, still recorded
    assert [r[:3] for r in runs(store)] == [("projections", "ok", 0), ("projections", "ok", written)]

    with TestClient(create_app(tuned, store)) as client:
        body = client.get("/api/v1/runs", params={"source": "projections"}).json()
        health = client.get("/health").json()
    assert body["numberMatched"] == 2 and {r["source"] for r in body["runs"]} == {"projections"}
    proj = health["sources"]["projections"]
    assert proj["mode"] == "demo" and proj["stale"] is False and proj["last_successful_run"]
    assert proj["schedule"] == tuned.schedule_projections


def test_new_sites_get_projections_without_recomputing_the_others(tuned, store, sites):
    assert sites_without_projections(store) == ["rome_forum", "york_minster"]
    assert sched.projections_new_sites_job(tuned) == ["rome_forum", "york_minster"]  # none ever: all
    assert sched.projections_new_sites_job(tuned) == []  # nothing new: no pass, no run
    assert len(runs(store)) == 1
    with store.session() as s:
        before = s.scalar(select(func.max(ProjectionValueRow.computed_at)))

    store.upsert_sites([make_site("athens_acropolis", 23.726, 37.972)])
    assert sched.projections_new_sites_job(tuned) == ["athens_acropolis"]
    latest = store.list_runs(sched.PROJECTIONS)[0][0]
    assert (latest.status, latest.sites) == ("ok", 1)
    assert projected_sites(store) == {"rome_forum", "york_minster", "athens_acropolis"}
    with store.session() as s:  # the sites computed before were not rewritten
        old = s.scalar(
            select(func.max(ProjectionValueRow.computed_at)).where(
                ProjectionValueRow.site_id != "athens_acropolis"
            )
        )
    assert old == before


def test_a_pass_meeting_a_running_one_is_busy_and_records_nothing(tuned, store, sites):
    lease = hold_pass(store.engine, sched.PROJECTIONS, tuned.scheduler_lease_ttl_seconds)
    assert lease is not None
    try:
        pipeline = Pipeline(tuned, store, VariableStore(tuned.data_dir / "variables"))
        result = projection_pass(pipeline, sites)
    finally:
        lease.release()
    assert result.status == "busy" and "another process" in result.error
    assert runs(store) == [] and projected_sites(store) == set()


class Failing(SyntheticProjections):
    """The demo source whose first run's service is down."""

    def fetch(self, sites, run, first_year, last_year):
        if run == self.runs()[0]:
            raise SourceUnavailableError("projections-cordex-domains-single-levels: HTTP 500 from the CDS")
        return super().fetch(sites, run, first_year, last_year)


class Down(SyntheticProjections):
    def fetch(self, sites, run, first_year, last_year):
        raise SourceUnavailableError("projections-cordex-domains-single-levels: HTTP 500 from the CDS")


def test_failures_are_recorded_with_a_system_alert_resolved_by_the_next_good_pass(
    tuned, store, sites, monkeypatch
):
    monkeypatch.setattr("monitor.projections.projection_source", Down)
    sched.projections_job(tuned)
    [(_, status, written, _, error)] = runs(store)
    assert (status, written) == ("failed", 0) and "HTTP 500" in error and projected_sites(store) == set()
    [(indicator, message)] = system_alerts(store)
    assert indicator == sched.FAILURE and "HTTP 500" in message

    monkeypatch.setattr("monitor.projections.projection_source", Failing)
    sched.projections_job(tuned)
    _, status, written, _, error = runs(store)[0]
    assert status == "partial" and written > 0 and error.count("HTTP 500") == 1

    monkeypatch.setattr("monitor.projections.projection_source", SyntheticProjections)
    sched.projections_job(tuned)
    assert runs(store)[0][1] == "ok" and system_alerts(store) == []


def test_freshness_is_judged_against_the_cadence(tuned, store, sites):
    sched.check_freshness(store, tuned)  # never ran: not judged
    assert system_alerts(store) == []
    sched.projections_job(tuned)
    done = store.list_runs(sched.PROJECTIONS)[0][0].finished_at
    done = done if done.tzinfo else done.replace(tzinfo=UTC)

    within = done + timedelta(days=45)  # a monthly pass is not due yet, or only just missed
    assert sched.check_freshness(store, tuned, within)["projections"] == "ok"
    assert system_alerts(store) == []

    overdue = done + timedelta(days=2 * 31 + tuned.freshness_grace_days + 1)
    assert sched.check_freshness(store, tuned, overdue)["projections"] == "open"
    [(indicator, message)] = system_alerts(store)
    assert indicator == sched.FRESHNESS and "no successful pass since" in message

    assert sched.check_freshness(store, tuned, within)["projections"] == "ok"  # resolved again
    assert system_alerts(store) == []
    off = tuned.model_copy(update={"schedule_projections": "off"})
    assert sched.check_freshness(store, off, overdue + timedelta(days=400))["projections"] == "ok"
