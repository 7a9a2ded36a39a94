"""`heritage-monitor scheduler` as a process: one per database, an orderly stop on SIGTERM in the middle of
a backfill, and a successor that takes over at once and resumes from the watermark.

Three scheduler processes in all (starting one costs seconds): the first runs a backfill; a second one,
started meanwhile, is refused; SIGTERM stops the first between two chunks; a third one finishes the job.
"""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import date, timedelta

from sqlalchemy import create_engine, select, text

from monitor.lease import backfill_progress, mark_interrupted_runs, pass_lease, scheduler_leases
from monitor.store.tables import RunRow, WatermarkRow
from tests.durability.conftest import CLI, SITES, make_env

DEMO_END = date(2026, 11, 15)
ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def start_scheduler(env) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition, what: str, timeout: float = 120.0, procs=()):
    """Poll `condition` (a database read) until it is truthy; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"scheduler exited {proc.returncode} before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lease_held(engine) -> bool:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return bool(conn.execute(text(ADVISORY_LOCKS)).scalar())
        rows = conn.execute(select(scheduler_leases.c.name).where(scheduler_leases.c.name == "scheduler"))
        return rows.first() is not None


def era5_runs(engine) -> list:
    with engine.connect() as conn:
        q = select(RunRow.status, RunRow.period_start, RunRow.error).where(RunRow.source == "era5_land")
        return conn.execute(q.order_by(RunRow.started_at)).all()


def progress(engine):
    with engine.connect() as conn:
        return conn.execute(select(backfill_progress)).first()


def watermarks(engine) -> set[date]:
    with engine.connect() as conn:
        q = select(WatermarkRow.last_day).where(WatermarkRow.source == "era5_land")
        return set(conn.execute(q).scalars())


def seed_sites(database_url: str) -> None:
    from monitor.store.db import make_engine, upgrade
    from monitor.store.repository import Store
    from tests.conftest import make_site

    engine = make_engine(database_url)
    upgrade(engine)
    Store(engine).upsert_sites([make_site(s, x, y, materials=["limestone"]) for s, (x, y) in SITES.items()])
    engine.dispose()


def test_one_scheduler_per_database_sigterm_mid_backfill_and_resume(tmp_path, database_url):
    seed_sites(database_url)
    schedules = {f"HM_SCHEDULE_{s.upper()}": "off" for s in ("cams_europe", "sentinel2", "egms", "clms_land")}
    schedules |= {f"HM_SCHEDULE_{s.upper()}": "off" for s in ("cems_fire", "glofas", "ems_rapid_mapping")}
    env = make_env(
        tmp_path / "data",
        database_url,
        HM_SCHEDULE_ERA5_LAND="2s",
        HM_DEMO_YEARS="3",
        HM_BACKFILL_CHUNK="month",
        HM_SCHEDULER_LEASE_TTL_SECONDS="600",  # a lease left behind would block a successor for 10 min
        **schedules,
    )
    engine = create_engine(database_url)
    first = second = third = None
    try:
        first = start_scheduler(env)
        wait_for(lambda: lease_held(engine), "the first scheduler's lease", procs=[first])
        second = start_scheduler(env)  # refused while the first one runs its backfill

        # a backfill in the first scheduler: a chunk committed, more to come
        live = wait_for(lambda: progress(engine), "a committed chunk of the backfill", procs=[first])
        assert [r.status for r in era5_runs(engine)] == ["running"]
        # another process passing over the database now (a `run`, a scheduler starting) leaves the live
        # run alone and cannot pass over its source
        assert mark_interrupted_runs(engine) == 0
        assert [r.status for r in era5_runs(engine)] == ["running"]
        busy = pass_lease(engine, "era5_land")
        assert not busy.acquire()

        first.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
        assert time.monotonic() - sent < 30, "the scheduler did not stop promptly"
        assert "scheduler stopped" in out

        # stopped between two chunks: the run is interrupted, nothing half-written, nothing left held
        (run,) = era5_runs(engine)
        assert run.status == "interrupted" and "stop requested" in run.error
        stopped = progress(engine)
        assert live.done_through <= stopped.done_through < DEMO_END
        assert watermarks(engine) == {stopped.done_through}  # every site got exactly the committed chunks
        assert not lease_held(engine)
        if engine.dialect.name != "postgresql":
            with engine.connect() as conn:
                assert conn.execute(select(scheduler_leases)).all() == []  # pass lease released too

        out, err = second.communicate(timeout=120)
        assert second.returncode == 1, out + err
        assert "another scheduler already runs on this database" in err

        # a successor takes the lease at once and resumes after the last committed chunk
        third = start_scheduler(env)
        wait_for(lambda: lease_held(engine), "the successor's lease", procs=[third])
        wait_for(
            lambda: len(era5_runs(engine)) >= 2 and era5_runs(engine)[1].status != "running",
            "the resumed pass",
            procs=[third],
        )
        resumed = era5_runs(engine)[1]
        assert resumed.status == "ok", resumed.error
        assert resumed.period_start == stopped.done_through + timedelta(days=1)
        assert watermarks(engine) == {DEMO_END} and progress(engine) is None
        third.send_signal(signal.SIGTERM)
        out, err = third.communicate(timeout=60)
        assert third.returncode == 0, out + err
        assert "running" not in {r.status for r in era5_runs(engine)}
    finally:
        for proc in (first, second, third):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        engine.dispose()
