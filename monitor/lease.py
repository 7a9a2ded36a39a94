"""Exactly one scheduler per database: a PostgreSQL advisory lock, or on SQLite a lease row.

PostgreSQL: `pg_try_advisory_lock` on a dedicated connection held for the life of the process; the lock
goes away with the connection, so a killed scheduler frees it at once. For the same reason a renewal that
fails, or finds the connection closed, loses the lease at once: another process may already hold the lock.

SQLite (or any other database): a row of `scheduler_leases` (owner id, expires_at). The holder renews it
with a heartbeat; another process takes it over only after it has expired, or at once when its holder is a
process of the same host that no longer runs (a killed process).

The same lease, named `pass:<source>`, is held by every pipeline pass of a source: two processes never
write one source at the same time, and a run left `running` is marked `interrupted` only while its
source's pass lease is free, i.e. only when the process that started it is gone.

Also declared here (SQLAlchemy Core; schema owned by migration 0003): the backfill progress of the
pipeline and the system alerts of the scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.store.tables import UTCDateTime

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

metadata = MetaData()

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

backfill_progress = Table(
    "backfill_progress",
    metadata,
    Column("source", String(40), primary_key=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("done_through", Date, nullable=False),
    Column("run_id", String(40)),
    Column("updated_at", UTCDateTime, nullable=False),
)

system_alerts = Table(
    "system_alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(12), nullable=False),  # always "system"
    Column("source", String(40), nullable=False),
    Column("indicator_id", String(80), nullable=False),  # e.g. source_freshness
    Column("status", String(16), nullable=False),  # open | resolved
    Column("message", Text, nullable=False),
    Column("newest_data", Date),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def owner_id() -> str:
    """A lease owner id: `host:pid:random`, so a holder on this host can be checked for life."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only for an owner that is a process of this host that no longer runs (or a zombie).

    An owner on another host, or one whose state cannot be read, counts as alive: its lease then
    frees only on expiry, never early.
    """
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # killed but not yet reaped by its parent
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`, derived from the lease name."""
    return zlib.crc32(f"heritage-monitor:{name}".encode()) | (0x4845 << 32)


class LeaseHeldError(RuntimeError):
    """Another process holds the lease."""


class Lease:
    """The right to run the scheduler of one database; `acquire` never blocks."""

    def __init__(
        self,
        engine: Engine,
        name: str = "scheduler",
        ttl_seconds: float = 60.0,
        owner: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.engine = engine
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.owner = owner or owner_id()
        self.clock = clock
        self.held = False
        self._conn: Connection | None = None
        self._renewed = clock()
        self._lock = threading.RLock()  # the heartbeat thread and the holder share the connection
        self._stop_heartbeat = threading.Event()

    @property
    def advisory(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # ---- public ----------------------------------------------------------------------------------
    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease if free (or expired, or its holder dead); True when this process holds it.

        `wait` seconds: keep trying that long (a PostgreSQL server frees a killed holder's lock only once it
        notices the closed connection).
        """
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                self.held = self._acquire_advisory() if self.advisory else self._acquire_row()
            if self.held:
                self._renewed = self.clock()
                self._stop_heartbeat.clear()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def renew(self) -> bool:
        """The heartbeat: extend the lease; False (and `held` False) when it was lost.

        Lease row: a failing renewal (a busy or unreachable database) keeps the lease until its
        time-to-live since the last good renewal has passed, as nobody may take the row over before.
        Advisory lock: the lock lives only as long as its connection, so a failing renewal (or a lock
        no longer found on it) loses the lease at once, and the connection is dropped for good.
        """
        with self._lock:
            if not self.held:
                return False
            try:
                if self.advisory:
                    self.held = self._check_advisory()
                else:  # an expired lease nobody took over is taken again
                    self.held = self._renew_row() or self._acquire_row()
                if self.held:
                    self._renewed = self.clock()
            except Exception as exc:
                self.held = not self.advisory and self.clock() - self._renewed < self.ttl
                state = "kept" if self.held else "lost"
                log.warning("lease %s: renewal failed (%s); %s", self.name, exc, state)
            if not self.held and self.advisory:
                self._drop_connection()
            return self.held

    def keep_alive(self, on_lost: Callable[[], None] | None = None) -> threading.Thread:
        """Renew the lease every third of its time-to-live in a daemon thread until `release`; `on_lost`
        is called once if it is lost (the holder must then stop writing)."""

        def beat() -> None:
            interval = max(0.5, self.ttl.total_seconds() / 3)
            while not self._stop_heartbeat.wait(interval):
                if not self.renew():
                    if self._stop_heartbeat.is_set():
                        return
                    log.error("lease %s lost to another process", self.name)
                    if on_lost is not None:
                        on_lost()
                    return

        thread = threading.Thread(target=beat, name=f"lease:{self.name}", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the lease up (idempotent)."""
        self._stop_heartbeat.set()
        with self._lock:
            self._release()

    def _release(self) -> None:
        try:
            if self.advisory:
                if self._conn is not None and self.held:
                    try:
                        self._conn.execute(
                            text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)}
                        )
                        self._conn.commit()
                    except Exception as exc:  # a dropped connection: its lock is gone with it
                        log.warning("lease %s: unlock failed (%s); connection closed instead", self.name, exc)
                        self._drop_connection()
                if self._conn is not None:
                    self._conn.close()
            elif self.held:
                with self.engine.begin() as conn:
                    conn.execute(
                        delete(scheduler_leases).where(
                            scheduler_leases.c.name == self.name, scheduler_leases.c.owner == self.owner
                        )
                    )
        finally:
            self._conn = None
            self.held = False

    def holder(self) -> str | None:
        """Owner of the lease row, when unexpired (SQLite); None with advisory locks."""
        if self.advisory:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(scheduler_leases.c.owner, scheduler_leases.c.expires_at).where(
                    scheduler_leases.c.name == self.name
                )
            ).first()
        if row is None or _aware(row.expires_at) <= self.clock():
            return None
        return row.owner

    # ---- PostgreSQL --------------------------------------------------------------------------------
    def _acquire_advisory(self) -> bool:
        if self.held and self._conn is not None:
            return self._check_advisory()
        conn = self.engine.connect()
        got = bool(
            conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self.name)}).scalar()
        )
        conn.commit()  # the session-level lock outlives the transaction
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def _check_advisory(self) -> bool:
        """True while the lease's own connection is open and still holds the lock."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            return False
        key = advisory_key(self.name)
        held = conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid::bigint = :hi AND objid::bigint = :lo"
                " AND objsubid = 1)"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).scalar()
        conn.commit()
        return bool(held)

    def _drop_connection(self) -> None:
        """Close the lease's connection for good (never back to the pool, where a lock could linger)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()
            conn.close()
        except Exception as exc:  # already broken: nothing more to free
            log.debug("lease %s: closing its connection: %s", self.name, exc)

    # ---- lease row ---------------------------------------------------------------------------------
    def _acquire_row(self) -> bool:
        now = self.clock()
        t = scheduler_leases
        with self.engine.connect() as conn:
            current = conn.execute(select(t.c.owner).where(t.c.name == self.name)).scalar()
        free = [t.c.expires_at <= now, t.c.owner == self.owner]
        if current is not None and current != self.owner and owner_is_dead(current):
            log.warning("lease %s: its holder %s no longer runs; taking it over", self.name, current)
            free.append(t.c.owner == current)  # only that dead holder's row, never a newer one
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(t)
        stmt = insert.values(name=self.name, owner=self.owner, acquired_at=now, expires_at=now + self.ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": self.owner, "acquired_at": now, "expires_at": now + self.ttl},
            where=or_(*free),
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            owner = conn.execute(select(t.c.owner).where(t.c.name == self.name)).scalar()
        return owner == self.owner

    def _renew_row(self) -> bool:
        now = self.clock()
        t = scheduler_leases
        with self.engine.begin() as conn:
            res = conn.execute(
                update(t)
                .where(t.c.name == self.name, t.c.owner == self.owner, t.c.expires_at > now)
                .values(expires_at=now + self.ttl)
            )
        return bool(res.rowcount)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---- pass leases: one pass per source at a time, and which `running` runs are orphans --------------
#: How long a pass waits for its source's lease (a killed holder's PostgreSQL lock frees within moments).
PASS_LEASE_WAIT_SECONDS = 2.0
INTERRUPTED = "the process ended before the run finished"


def pass_lease(engine: Engine, source: str, ttl_seconds: float = 60.0) -> Lease:
    """The lease a pass of `source` (a source id, or a run name such as `recompute:<indicator>`) holds."""
    return Lease(engine, name=f"pass:{source}", ttl_seconds=ttl_seconds)


def hold_pass(engine: Engine, source: str, ttl_seconds: float = 60.0, on_lost=None) -> Lease | None:
    """Take and keep alive the pass lease of `source`, or None when a live process holds it."""
    lease = pass_lease(engine, source, ttl_seconds)
    if not lease.acquire(wait=PASS_LEASE_WAIT_SECONDS):
        return None
    lease.keep_alive(on_lost)
    return lease


def hold_passes(
    engine: Engine, sources: Iterable[str], ttl_seconds: float = 60.0, on_lost=None
) -> list[Lease]:
    """Take and keep alive the pass leases of all `sources`, or none of them.

    Taken in sorted order, so two holders of overlapping sets never each keep one the other waits for.
    Raises `LeaseHeldError` naming the first source a live process holds (the ones taken are released).
    """
    held: list[Lease] = []
    for source in sorted(set(sources)):
        lease = hold_pass(engine, source, ttl_seconds, on_lost)
        if lease is None:
            release_all(held)
            raise LeaseHeldError(source)
        held.append(lease)
    return held


def release_all(leases: Sequence[Lease]) -> None:
    """Release `leases` in reverse order; one failing release never keeps the others held."""
    for lease in reversed(leases):
        try:
            lease.release()
        except Exception as exc:
            log.warning("lease %s: release failed: %s", lease.name, exc)


def mark_interrupted_runs(
    engine: Engine, source: str | None = None, *, held: bool = False, ttl_seconds: float = 60.0
) -> int:
    """Runs left `running` by a process that is gone become `interrupted`; returns how many.

    The runs of a source are marked only while its pass lease can be taken (`held`: the caller already
    holds the lease of `source`): a run whose process still holds the lease is never touched, on any
    host. Each source is checked on its own, so one busy source does not hide the others' orphans.
    """
    from monitor.store.tables import RunRow

    query = select(RunRow.source).where(RunRow.status == "running").distinct()
    if source is not None:
        query = query.where(RunRow.source == source)
    with engine.connect() as conn:
        names = sorted(conn.execute(query).scalars())
    marked = 0
    for name in names:
        if held and name == source:
            marked += _mark(engine, name)
            continue
        lease = pass_lease(engine, name, ttl_seconds)
        if not lease.acquire():
            log.info("runs of %s left running belong to a live process: not marked", name)
            continue
        try:
            marked += _mark(engine, name)
        finally:
            lease.release()
    return marked


def _mark(engine: Engine, source: str) -> int:
    from monitor.store.tables import RunRow

    with engine.begin() as conn:
        res = conn.execute(
            update(RunRow)
            .where(RunRow.source == source, RunRow.status == "running")
            .values(status="interrupted", finished_at=utcnow(), error=INTERRUPTED)
        )
    return res.rowcount or 0


def lock_shared_indicators(session: Session, indicator_ids: Sequence[str]) -> None:
    """Serialise the passes that evaluate the same indicators: an indicator fed by two sources is computed
    and judged by both sources' passes, which may run at once.

    PostgreSQL: a transaction-scoped advisory lock per indicator, taken in sorted order (no deadlock between
    two passes) and released at commit or rollback. SQLite needs none: it admits one writing transaction at
    a time, and a pass writes an indicator's values before it reads that indicator's alerts, so the second
    pass reads them only once the first has committed.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for indicator_id in sorted(set(indicator_ids)):
        key = advisory_key(f"indicator:{indicator_id}")
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
