"""Exactly one scheduler per database: a PostgreSQL advisory lock, or on SQLite a lease row.

PostgreSQL: `pg_try_advisory_lock` on a dedicated connection held for the life of the process; the lock
goes away with the connection, so a killed scheduler frees it at once.

SQLite (or any other database): a row of `scheduler_leases` (owner id, expires_at). The holder renews it
with a heartbeat job; another process takes it over only after it has expired.

Also declared here (SQLAlchemy Core; schema owned by migration 0003): the backfill progress of the
pipeline and the system alerts of the scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
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

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

metadata = MetaData()

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

backfill_progress = Table(
    "backfill_progress",
    metadata,
    Column("source", String(40), primary_key=True),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("done_through", Date, nullable=False),
    Column("run_id", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.held = False
        self._conn: Connection | None = None

    @property
    def advisory(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # ---- public ----------------------------------------------------------------------------------
    def acquire(self) -> bool:
        """Take the lease if free (or expired); True when this process holds it."""
        self.held = self._acquire_advisory() if self.advisory else self._acquire_row()
        return self.held

    def renew(self) -> bool:
        """The heartbeat: extend the lease; False (and `held` False) when it was lost."""
        if not self.held:
            return False
        try:
            if self.advisory:
                self.held = self._check_advisory()
            else:  # an expired lease nobody took over is taken again
                self.held = self._renew_row() or self._acquire_row()
        except Exception as exc:  # a database hiccup: we cannot prove we still hold it
            log.warning("scheduler lease renewal failed: %s", exc)
            self.held = False
        return self.held

    def release(self) -> None:
        """Give the lease up (idempotent)."""
        try:
            if self.advisory:
                if self._conn is not None:
                    if self.held:
                        self._conn.execute(
                            text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)}
                        )
                        self._conn.commit()
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
        if self._conn is None:
            return False
        self._conn.execute(text("SELECT 1"))
        self._conn.commit()
        return True

    # ---- lease row ---------------------------------------------------------------------------------
    def _acquire_row(self) -> bool:
        now = self.clock()
        t = scheduler_leases
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(t)
        stmt = insert.values(name=self.name, owner=self.owner, acquired_at=now, expires_at=now + self.ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": self.owner, "acquired_at": now, "expires_at": now + self.ttl},
            where=or_(t.c.expires_at <= now, t.c.owner == self.owner),
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
