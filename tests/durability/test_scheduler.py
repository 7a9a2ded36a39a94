"""The scheduler: jobs and their options, one lease per database, system alerts; time injected."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from monitor import scheduler as sched
from monitor.lease import Lease


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_jobs_are_registered_with_the_right_options(settings, store):
    s = sched.background(settings.model_copy(update={"schedule_sentinel2": "off"}))
    jobs = {j.id: j for j in s.get_jobs()}
    assert "source:sentinel2" not in jobs
    for source_id in ("era5_land", "cams_europe", "cems_fire", "glofas", "ems_rapid_mapping", "egms"):
        job = jobs[f"source:{source_id}"]
        assert job.coalesce and job.max_instances == 1
        assert job.misfire_grace_time == settings.scheduler_misfire_grace_seconds
        assert isinstance(job.func_ref, str) and job.func_ref.startswith("monitor.scheduler:")
        assert job.args == (source_id,)
    assert jobs["source:egms"].func_ref == "monitor.scheduler:run_if_changed_job"
    now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    nxt = sched.next_runs(s, now)
    assert nxt["source:era5_land"] == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert nxt["source:cems_fire"] == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    # registering again (at every start) replaces, never duplicates
    s.start(paused=True)
    try:
        sched.configure(s, settings)
        ids = [j.id for j in s.get_jobs()]
        assert len(ids) == len(set(ids)) == len(jobs) + 2  # + sentinel2 (default) + the lease heartbeat
    finally:
        s.shutdown(wait=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily@07:30", ("cron", {"hour": 7, "minute": 30, "timezone": "UTC"})),
        ("72h", ("interval", {"hours": 72})),
        ("15m", ("interval", {"minutes": 15})),
        ("30s", ("interval", {"seconds": 30})),
        ("onchange@60m", ("interval", {"minutes": 60})),
        ("off", None),
    ],
)
def test_schedule_syntax(text, expected):
    assert sched.parse_schedule(text) == expected


def test_every_job_has_a_thread_of_its_own(settings, store):
    """A hung pass holds one thread: never the one another source, deliveries or the heartbeat need."""
    s = sched.background(settings)
    s.start(paused=True)
    try:
        jobs = s.get_jobs()
        assert len(jobs) == len(sched.SOURCES) + 5  # every source and both projection jobs
        assert s._lookup_executor("default")._pool._max_workers >= len(jobs)
    finally:
        s.shutdown(wait=False)


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError):
        sched.parse_schedule("every tuesday")


def test_only_one_lease_per_database(store):
    clock = Clock(datetime(2026, 11, 20, tzinfo=UTC))
    a = Lease(store.engine, ttl_seconds=60, owner="a", clock=clock)
    b = Lease(store.engine, ttl_seconds=60, owner="b", clock=clock)
    assert a.acquire() and not b.acquire()
    clock.at += timedelta(seconds=50)
    assert a.renew() and not b.acquire()
    a.release()
    assert b.acquire() and not a.acquire()
    b.release()


def test_expired_lease_is_taken_over(store):
    if store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL: an advisory lock, freed when its holder's connection ends")
    clock = Clock(datetime(2026, 11, 20, tzinfo=UTC))
    a = Lease(store.engine, ttl_seconds=60, owner="a", clock=clock)
    b = Lease(store.engine, ttl_seconds=60, owner="b", clock=clock)
    assert a.acquire()
    clock.at += timedelta(seconds=61)  # a stopped renewing (killed)
    assert b.acquire() and b.holder() == "b"
    assert not a.renew() and not a.held


def test_two_schedulers_on_one_database(settings, store):
    first = sched.background(settings)
    second = sched.background(settings)
    first.start(paused=True)
    try:
        second.start(paused=True)  # the API process's scheduler: logs and stays stopped (/ready: 503)
        assert first.running and not second.running
        with pytest.raises(sched.LeaseError):
            sched.HeritageScheduler.start(sched.blocking(settings))
    finally:
        first.shutdown(wait=False)
    assert not first.lease.held
    second.start(paused=True)
    assert second.running
    second.shutdown(wait=False)


def test_stale_source_raises_a_system_alert_not_a_site_alert(settings, store):
    from monitor.pipeline import Pipeline
    from monitor.store.variables import VariableStore
    from tests.conftest import make_site

    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    Pipeline(settings, store, VariableStore(settings.data_dir / "variables")).run(
        ["era5_land"], date(2026, 10, 1), date(2026, 11, 15)
    )
    fresh = sched.check_freshness(store, settings, now=datetime(2026, 11, 17, tzinfo=UTC))
    assert fresh == {"era5_land": "ok"}
    later = datetime(2026, 12, 31, tzinfo=UTC)
    assert sched.check_freshness(store, settings, now=later) == {"era5_land": "open"}
    assert sched.check_freshness(store, settings, now=later) == {"era5_land": "open"}  # one episode
    (alert,) = sched.open_system_alerts(store)
    assert alert["kind"] == "system" and alert["indicator"] == "source_freshness"
    assert all(a.kind != "system" for a in store.list_alerts(limit=1000)[0])
    assert sched.check_freshness(store, settings, now=datetime(2026, 11, 16, tzinfo=UTC)) == {
        "era5_land": "ok"
    }
    assert sched.open_system_alerts(store) == []
