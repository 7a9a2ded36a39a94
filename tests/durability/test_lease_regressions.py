"""Pass leases under stress: a recompute excludes the passes of its input sources, a dropped PostgreSQL
lease connection cancels its pass at once, and a pass given up on that still completes is recorded as
what it committed."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import date

import pytest
from sqlalchemy import select, text

from monitor import lease as lease_module
from monitor import pipeline as pipeline_module
from monitor import scheduler as sched
from monitor.lease import Lease, advisory_key, pass_lease
from monitor.store.tables import IndicatorValueRow, RunRow, WatermarkRow
from tests.conftest import make_site

START, END = date(2026, 10, 1), date(2026, 11, 15)
TWO_SOURCES = "limestone_recession_icp"  # inputs from era5_land and cams_europe
RECOMPUTE = f"recompute:{TWO_SOURCES}"


def pipeline_for(settings, store):
    from monitor.pipeline import Pipeline
    from monitor.store.variables import VariableStore

    return Pipeline(settings, store, VariableStore(settings.data_dir / "variables"))


def runs(store, source: str) -> list[tuple[str, str | None]]:
    with store.session() as s:
        rows = s.execute(select(RunRow.status, RunRow.error).where(RunRow.source == source))
        return [tuple(r) for r in rows]


def is_free(store, name: str) -> bool:
    """True when the pass lease `name` can be taken at once (then it is given back)."""
    lease = pass_lease(store.engine, name)
    if not lease.acquire():
        return False
    lease.release()
    return True


@pytest.fixture
def stored(settings, store, monkeypatch):
    """One site with both input sources of `TWO_SOURCES` stored over [START, END]."""
    monkeypatch.setattr(lease_module, "PASS_LEASE_WAIT_SECONDS", 0.2)  # a busy lease answers quickly
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["limestone"])])
    report = pipeline_for(settings, store).run(["era5_land", "cams_europe"], START, END)
    assert [r.status for r in report.results] == ["ok", "ok"]
    return pipeline_for(settings, store)


# ---- recompute and the passes of its input sources -------------------------------------------------
@pytest.mark.parametrize("busy_source", ["era5_land", "cams_europe"])
def test_recompute_is_busy_while_a_pass_of_an_input_source_runs(stored, store, busy_source):
    other = Lease(store.engine, name=f"pass:{busy_source}", owner=f"{socket.gethostname()}:{os.getpid()}:p")
    assert other.acquire()  # a live process's pass of that source
    try:
        (result,) = stored.recompute([TWO_SOURCES]).results
    finally:
        other.release()
    assert result.status == "busy" and busy_source in result.error and result.run_id is None
    assert runs(store, RECOMPUTE) == []  # nothing started, nothing written
    assert all(is_free(store, n) for n in (RECOMPUTE, "era5_land", "cams_europe")), "a lease was kept"


def test_a_pass_of_an_input_source_is_busy_while_recompute_runs(stored, settings, store, monkeypatch):
    seen = {}
    original = pipeline_module.mark_interrupted_runs

    def meanwhile(*args, **kwargs):  # the recompute holds its leases now: a scheduled pass comes
        seen.update({s: stored.run_source(s, store.site_set()) for s in ("era5_land", "cams_europe")})
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "mark_interrupted_runs", meanwhile)
    (result,) = stored.recompute([TWO_SOURCES]).results
    assert result.status == "ok", result.error
    assert {s: r.status for s, r in seen.items()} == {"era5_land": "busy", "cams_europe": "busy"}
    assert runs(store, "era5_land") == [("ok", None)] and runs(store, "cams_europe") == [("ok", None)]
    assert runs(store, RECOMPUTE) == [("ok", None)]
    monkeypatch.undo()
    again = stored.run_source("era5_land", store.site_set(), START, END)  # the leases were given back
    assert again.status != "busy"


@pytest.mark.parametrize("error", [RuntimeError("an unexpected bug"), KeyboardInterrupt()])
def test_recompute_ends_its_run_and_frees_its_leases_on_any_error(stored, store, monkeypatch, error):
    def evaluate(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(pipeline_module, "evaluate", evaluate)
    with store.session() as s:
        values_before = s.scalar(
            select(IndicatorValueRow.id).where(IndicatorValueRow.indicator_id == TWO_SOURCES)
        )
    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            stored.recompute([TWO_SOURCES])
    else:
        (result,) = stored.recompute([TWO_SOURCES]).results
        assert result.status == "failed" and result.error == "RuntimeError: an unexpected bug"
        assert result.values_written == 0  # its transaction rolled back
    ((status, message),) = runs(store, RECOMPUTE)
    assert status == "failed" and type(error).__name__ in message
    assert all(is_free(store, n) for n in (RECOMPUTE, "era5_land", "cams_europe")), "a lease was kept"
    assert stored.cancel is None
    with store.session() as s:
        values_after = s.scalar(
            select(IndicatorValueRow.id).where(IndicatorValueRow.indicator_id == TWO_SOURCES)
        )
    assert values_after == values_before


# ---- a dropped PostgreSQL lease connection ----------------------------------------------------------
def _terminate_holder(engine, name: str) -> None:
    """End the server backend holding the advisory lock of lease `name` (as a network cut or a server
    restart would)."""
    key = advisory_key(name)
    with engine.connect() as conn:
        pid = conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND classid::bigint = :hi AND objid::bigint = :lo"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).scalar_one()
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        conn.commit()


@pytest.fixture
def postgresql(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks: PostgreSQL only (set HM_DATABASE_URL)")
    return store


def test_a_dropped_lease_connection_loses_the_lease_at_once(postgresql):
    engine = postgresql.engine
    holder = Lease(engine, name="pass:era5_land", ttl_seconds=600)
    other = Lease(engine, name="pass:era5_land")
    assert holder.acquire() and not other.acquire()
    _terminate_holder(engine, "pass:era5_land")
    assert other.acquire(wait=10), "the server kept the lock of a terminated backend"
    try:  # far within its TTL, yet the lock is gone: the holder must know it at its next renewal
        assert not holder.renew() and not holder.held and holder._conn is None
        holder.release()  # and giving it up afterwards never touches the new holder's lock
        assert other.renew()
    finally:
        other.release()


def test_a_failing_advisory_renewal_loses_the_lease_at_once(postgresql, monkeypatch):
    holder = Lease(postgresql.engine, name="pass:glofas", ttl_seconds=600)
    assert holder.acquire()

    def unreachable():
        raise OSError("server closed the connection unexpectedly")

    monkeypatch.setattr(holder, "_check_advisory", unreachable)
    assert not holder.renew() and not holder.held
    monkeypatch.undo()
    assert is_free(postgresql, "glofas"), "the lock outlived the lease given up"


def test_a_pass_whose_lease_connection_drops_is_cancelled_and_writes_nothing(
    settings, postgresql, monkeypatch
):
    store = postgresql
    ttl = 9.0  # renewed every 3 s: a lost lease is noticed at the next renewal, long before its TTL
    settings = settings.model_copy(update={"scheduler_lease_ttl_seconds": ttl})
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    tokens: list[sched.CancelToken] = []
    noticed_after: list[float] = []

    class Recorded(sched.CancelToken):
        def __init__(self) -> None:
            super().__init__()
            tokens.append(self)

    monkeypatch.setattr(sched, "CancelToken", Recorded)
    original = store.set_watermarks

    def drop_then_commit(*args, **kwargs):  # inside the first chunk's transaction
        original(*args, **kwargs)
        if not tokens[0].is_set():
            _terminate_holder(store.engine, "pass:era5_land")
            dropped = time.monotonic()
            while not tokens[0].is_set() and time.monotonic() < dropped + 2 * ttl:
                time.sleep(0.05)
            noticed_after.append(time.monotonic() - dropped)

    monkeypatch.setattr(store, "set_watermarks", drop_then_commit)
    result = pipeline_for(settings, store).run_source("era5_land", store.site_set(), START, END)
    assert result.status == "failed" and "pass lease of this source was lost" in result.error
    assert noticed_after[0] < ttl / 3 + 2, f"the lost lease was noticed only after {noticed_after[0]:.1f} s"
    assert runs(store, "era5_land") == [("failed", result.error)]
    with store.session() as s:
        assert s.scalar(select(WatermarkRow.source)) is None
        assert s.scalar(select(IndicatorValueRow.id)) is None
    assert is_free(store, "era5_land")


# ---- a pass given up on that completes after all -------------------------------------------------
@pytest.mark.parametrize("late", ["ok", "failed"])
def test_a_pass_given_up_is_recorded_as_what_it_committed(settings, store, monkeypatch, late):
    from monitor.pipeline import SourceRunResult

    settings = settings.model_copy(update={"source_time_budget_seconds": 0.3})
    monkeypatch.setattr(sched, "CANCEL_GRACE_SECONDS", 0.1)
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["marble"])])
    go_on = threading.Event()

    def body(worker) -> SourceRunResult:  # caught between its last check and its commit
        run_id = store.start_run("glofas", "demo", START, END, 1)
        go_on.wait(10)
        if late == "failed":  # it looks at its token before committing: nothing is stored
            error = f"PassCancelledError: {worker.cancel.reason}"
            store.finish_run(run_id, "failed", error=error)
            return SourceRunResult("glofas", "failed", run_id, START, END, error=error)
        with store.session.begin() as session:
            store.set_watermarks(session, "glofas", ["athens"], END, "")
        store.finish_run(run_id, "ok")
        return SourceRunResult("glofas", "ok", run_id, START, END)

    result = sched.guarded_pass(pipeline_for(settings, store), "glofas", body)
    assert result.status == "failed" and "time budget of 0.3 s" in result.error
    assert "cancelled before its next write" in result.error
    assert runs(store, "glofas") == [("failed", result.error)]
    assert [a["indicator"] for a in sched.open_system_alerts(store)] == [sched.FAILURE]

    go_on.set()
    for thread in list(sched.ABANDONED):
        thread.join(10)
    assert not sched.ABANDONED
    with store.session() as s:
        stored = s.scalar(select(WatermarkRow.last_day).where(WatermarkRow.source == "glofas"))
    if late == "ok":  # its chunk was committed: the run and the system alert say so
        assert stored == END
        assert runs(store, "glofas") == [("ok", None)]
        assert sched.open_system_alerts(store) == []
    else:
        assert stored is None
        assert runs(store, "glofas") == [("failed", result.error)]
        assert [a["indicator"] for a in sched.open_system_alerts(store)] == [sched.FAILURE]
    assert is_free(store, "glofas")


def test_a_pass_ending_within_the_grace_is_recorded_as_it_ended(settings, store, monkeypatch):
    """Past its budget the pass is cancelled; one that ends within the grace is never given up on."""
    from monitor.pipeline import SourceRunResult

    settings = settings.model_copy(update={"source_time_budget_seconds": 0.2})
    monkeypatch.setattr(sched, "CANCEL_GRACE_SECONDS", 5.0)

    def body(worker) -> SourceRunResult:
        run_id = store.start_run("glofas", "demo", START, END, 1)
        while not worker.cancel.is_set():
            time.sleep(0.02)
        store.finish_run(run_id, "ok")  # its last commit was already under way
        return SourceRunResult("glofas", "ok", run_id, START, END)

    result = sched.guarded_pass(pipeline_for(settings, store), "glofas", body)
    assert result.status == "ok" and not sched.ABANDONED
    assert runs(store, "glofas") == [("ok", None)] and sched.open_system_alerts(store) == []


# ---- passes of two sources sharing an indicator -----------------------------------------------------


def test_a_pass_waits_while_another_transaction_judges_an_indicator_it_shares(settings, postgresql):
    """`TWO_SOURCES` is computed and judged by the passes of era5_land and of cams_europe: while one holds
    the indicator (its chunk's transaction), the other's chunk waits instead of judging the same alerts."""
    store = postgresql
    store.upsert_sites([make_site("athens", 23.7257, 37.9715, materials=["limestone"])])
    key = advisory_key(f"indicator:{TWO_SOURCES}")
    done = threading.Event()
    with store.engine.connect() as other, other.begin():
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})  # a cams_europe chunk, say
        worker = threading.Thread(
            target=lambda: (pipeline_for(settings, store).run(["era5_land"], START, END), done.set())
        )
        worker.start()
        assert not done.wait(3.0), "the era5_land pass judged the shared indicator meanwhile"
        with store.session() as s:
            assert s.scalar(select(IndicatorValueRow.id)) is None  # its chunk wrote nothing yet
    assert done.wait(60), "the pass did not go on once the indicator was free"
    worker.join()
    assert runs(store, "era5_land") == [("ok", None)]
    with store.session() as s:
        assert s.scalar(select(IndicatorValueRow.id))  # written once the indicator was free
    with store.engine.connect() as other, other.begin():  # released at the pass's commit
        assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar()
