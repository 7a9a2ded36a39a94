"""One pass per source: a source that hangs ends within its time budget while the others complete, and
runs left `running` are marked interrupted only when the process that started them is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor import scheduler as sched
from monitor.lease import Lease, mark_interrupted_runs, owner_is_dead, pass_lease, scheduler_leases
from monitor.store.tables import IndicatorValueRow, RunRow, WatermarkRow
from tests.conftest import make_site

START, END = date(2026, 10, 1), date(2026, 11, 15)
HANGING = "ems_rapid_mapping"
ADVISORY_LOCKS = (  # held on this test's database (other databases of the server are not ours)
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
OTHERS = ["era5_land", "cems_fire"]


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (until closed)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop accepting (new connections are refused), then drop the connections held open."""
        if self._thread.is_alive():
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept loop
            self._thread.join(5)
            self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def pipeline_for(settings, store):
    from monitor.pipeline import Pipeline
    from monitor.store.variables import VariableStore

    return Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))


def statuses(store) -> dict[str, list[tuple[str, str | None]]]:
    out: dict[str, list] = {}
    with store.session() as s:
        for source, status, error in s.execute(select(RunRow.source, RunRow.status, RunRow.error)):
            out.setdefault(source, []).append((status, error))
    return out


@pytest.mark.parametrize("guard", ["time_budget", "client_timeout"])
def test_a_hanging_source_fails_in_bounded_time_and_the_others_complete(settings, store, silent, guard):
    """The hanging source comes first in a sequential pass: the others still run and succeed."""
    if guard == "time_budget":  # the client would wait 60 s per request: only the budget bounds the pass
        limits = {"ems_timeout_seconds": 60.0, "ems_max_attempts": 3, "source_time_budget_seconds": 1.5}
        expected_error = "time budget of 1.5 s"
    else:  # no budget at all: the client's timeout and bounded retries end the pass
        limits = {"ems_timeout_seconds": 0.5, "ems_max_attempts": 2, "source_time_budget_seconds": 0}
        expected_error = "unavailable after 2 attempts"
    remote = {"ems_rapid_mapping_mode": "remote", "ems_url": silent.url, "ems_backoff_seconds": 0.0}
    settings = settings.model_copy(update=remote | limits)
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    pipeline = pipeline_for(settings, store)

    started = time.monotonic()
    report = pipeline.run([HANGING, *OTHERS], START, END)
    elapsed = time.monotonic() - started

    results = {r.source: r for r in report.results}
    assert results[HANGING].status == "failed" and expected_error in results[HANGING].error
    assert all(results[s].status == "ok" and results[s].values_written > 0 for s in OTHERS)
    assert elapsed < 30, f"the pass took {elapsed:.1f} s"
    assert silent.accepted, "the source never reached the silent service"
    runs = statuses(store)
    assert [s for s, _ in runs[HANGING]] == ["failed"] and expected_error in runs[HANGING][0][1]
    assert all(runs[s] == [("ok", None)] for s in OTHERS)
    with store.session() as s:  # nothing of the hanging source was stored
        assert s.scalar(select(WatermarkRow.source).where(WatermarkRow.source == HANGING)) is None
        fed = [spec.id for spec in pipeline._affected(HANGING)]
        values = select(IndicatorValueRow.id).where(IndicatorValueRow.indicator_id.in_(fed))
        assert fed and s.scalar(values) is None

    alerts = sched.open_system_alerts(store)
    assert [(a["source"], a["indicator"], a["kind"]) for a in alerts] == [(HANGING, sched.FAILURE, "system")]
    assert expected_error in alerts[0]["message"]
    _api_shows_the_failure(settings, store, expected_error)

    silent.close()  # the service goes away: a given-up pass thread wakes up and stops without writing
    for thread in list(sched.ABANDONED):
        thread.join(15)
    assert not sched.ABANDONED
    runs = statuses(store)
    assert [s for s, _ in runs[HANGING]] == ["failed"] and expected_error in runs[HANGING][0][1]
    lease = pass_lease(store.engine, HANGING)
    assert lease.acquire(), "the given-up pass kept its source's lease after it ended"
    lease.release()


def _api_shows_the_failure(settings, store, expected_error: str) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings, store)) as client:
        health = client.get("/health").json()
        runs = client.get("/api/v1/runs").json()
    for body in (health, runs):
        (alert,) = body["systemAlerts"]
        assert alert["source"] == HANGING and alert["indicator"] == sched.FAILURE
    assert health["sources"][HANGING]["last_successful_run"] is None
    assert health["sources"]["era5_land"]["last_successful_run"] is not None
    failed = [r for r in runs["runs"] if r["source"] == HANGING]
    assert len(failed) == 1 and failed[0]["status"] == "failed" and expected_error in failed[0]["error"]
    assert {r["status"] for r in runs["runs"] if r["source"] != HANGING} == {"ok"}


def test_a_pass_cancelled_mid_chunk_rolls_the_chunk_back(settings, store):
    """The cancel token is checked before the commit: a pass given up on stores no part of its chunk."""
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    pipeline = pipeline_for(settings, store)
    token = sched.CancelToken()
    pipeline.cancel = token
    original = pipeline.store.set_watermarks

    def watermarks_then_cancel(*args, **kwargs):  # the budget runs out inside the chunk's transaction
        original(*args, **kwargs)
        token.cancel("the pass exceeded its time budget of 1 s (HM_SOURCE_TIME_BUDGET_SECONDS)")

    pipeline.store.set_watermarks = watermarks_then_cancel
    result = pipeline._pass("era5_land", store.site_set(), START, END)
    assert result.status == "failed" and "PassCancelledError: the pass exceeded" in result.error
    with store.session() as s:
        assert s.scalar(select(WatermarkRow.source)) is None
        assert s.scalar(select(IndicatorValueRow.id)) is None


def test_failure_alert_opens_once_and_resolves_after_a_good_pass(settings, store):
    from monitor.pipeline import SourceRunResult

    sched.record_outcome(store, SourceRunResult("glofas", "failed", error="SourceUnavailableError: HTTP 503"))
    sched.record_outcome(store, SourceRunResult("glofas", "failed", error="SourceUnavailableError: HTTP 500"))
    (alert,) = sched.open_system_alerts(store)
    assert alert["indicator"] == sched.FAILURE and "HTTP 500" in alert["message"]
    sched.record_outcome(store, SourceRunResult("glofas", "up_to_date"))  # nothing fetched: proves nothing
    assert len(sched.open_system_alerts(store)) == 1
    sched.record_outcome(store, SourceRunResult("glofas", "ok"))
    assert sched.open_system_alerts(store) == []


# ---- interrupted-run marking ----------------------------------------------------------------------
def _running_run(store, source: str = "era5_land") -> str:
    return store.start_run(source, "demo", START, END, 1)


def _status(store, run_id: str) -> str:
    with store.session() as s:
        return s.scalar(select(RunRow.status).where(RunRow.id == run_id))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_live_process_s_run_is_never_marked_and_its_source_is_busy(settings, store):
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    live = Lease(store.engine, name="pass:era5_land", owner=f"{socket.gethostname()}:{os.getpid()}:backfill")
    assert live.acquire()  # another process's backfill holds the source (a live pid of this host)
    run_id = _running_run(store)
    other = _running_run(store, "cems_fire")  # its process is gone: no lease
    try:
        assert mark_interrupted_runs(store.engine) == 1  # e.g. a scheduler starting now
        assert _status(store, run_id) == "running" and _status(store, other) == "interrupted"
        pipeline = pipeline_for(settings, store)
        result = pipeline.run_source("era5_land", store.site_set(), START, END)  # a scheduled pass
        assert result.status == "busy" and result.run_id is None
        assert _status(store, run_id) == "running"
        assert statuses(store)["era5_land"] == [("running", None)]  # no second run was started
    finally:
        live.release()
    assert mark_interrupted_runs(store.engine) == 1  # the backfill's process is gone now
    assert _status(store, run_id) == "interrupted"


def test_a_dead_process_s_run_is_marked_at_once(settings, store):
    run_id = _running_run(store)
    if store.engine.dialect.name == "postgresql":  # the lock of a closed connection is gone at once
        holder = Lease(store.engine, name="pass:era5_land")
        assert holder.acquire()
        holder._conn.invalidate()  # the connection dies with its process
        holder._conn = None
        _wait_until_unlocked(store.engine)
    else:  # a lease row of a process of this host that no longer runs, far from expiry
        now = datetime.now(UTC)
        with store.engine.begin() as conn:
            conn.execute(
                scheduler_leases.insert().values(
                    name="pass:era5_land",
                    owner=f"{socket.gethostname()}:{_dead_pid()}:killed",
                    acquired_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
    assert mark_interrupted_runs(store.engine) == 1
    assert _status(store, run_id) == "interrupted"


def _wait_until_unlocked(engine, timeout: float = 10.0) -> None:
    """The server drops a closed connection's locks once its backend has ended."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(text(ADVISORY_LOCKS)).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the advisory lock of a closed connection was never freed")


def test_another_host_s_lease_is_respected_until_it_expires(store):
    if store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL: advisory locks, no lease rows")
    run_id = _running_run(store)
    now = datetime.now(UTC)
    row = {"name": "pass:era5_land", "owner": "elsewhere:1:remote", "acquired_at": now}
    with store.engine.begin() as conn:
        conn.execute(scheduler_leases.insert().values(**row, expires_at=now + timedelta(minutes=1)))
    assert mark_interrupted_runs(store.engine) == 0 and _status(store, run_id) == "running"
    with store.engine.begin() as conn:
        conn.execute(scheduler_leases.update().values(expires_at=now - timedelta(seconds=1)))
    assert mark_interrupted_runs(store.engine) == 1 and _status(store, run_id) == "interrupted"


def test_owner_liveness():
    host = socket.gethostname()
    assert not owner_is_dead(f"{host}:{os.getpid()}:me")
    assert owner_is_dead(f"{host}:{_dead_pid()}:gone")
    assert not owner_is_dead(f"another-host:{_dead_pid()}:gone")  # another host: only expiry frees it
    assert not owner_is_dead("not an owner id")
    zombie = subprocess.Popen(["true"])  # exited, not yet reaped
    deadline = time.monotonic() + 10
    while not owner_is_dead(f"{host}:{zombie.pid}:zombie") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert owner_is_dead(f"{host}:{zombie.pid}:zombie")
    zombie.wait()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_a_failing_renewal_keeps_the_lease_only_until_its_ttl(store, monkeypatch):
    if store.engine.dialect.name == "postgresql":
        pytest.skip("advisory locks: a failed renewal loses the lease at once (test_lease_regressions.py)")
    clock = Clock(datetime(2026, 11, 20, tzinfo=UTC))
    lease = Lease(store.engine, ttl_seconds=60, owner="a", clock=clock)
    assert lease.acquire()

    def database_busy(*_args):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(lease, "_renew_row", database_busy)
    clock.at += timedelta(seconds=30)
    assert lease.renew() and lease.held  # a hiccup within the TTL
    clock.at += timedelta(seconds=31)
    assert not lease.renew() and not lease.held  # no good renewal for a whole TTL: lost
    monkeypatch.undo()
    lease.release()
