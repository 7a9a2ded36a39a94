"""Database tables (SQLAlchemy 2). The schema is owned by Alembic: change it only with a migration."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SiteRow(Base):
    """A registered heritage site; geometry as WKB (EPSG:4326) with its bbox for cheap filtering."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    heritage_type: Mapped[str | None] = mapped_column(String(100))
    materials: Mapped[list] = mapped_column(JSON, default=list)
    unesco_id: Mapped[str | None] = mapped_column(String(50))
    national_id: Mapped[str | None] = mapped_column(String(100))
    buffer_m: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    thresholds: Mapped[dict] = mapped_column(JSON, default=dict)
    geometry_wkb: Mapped[bytes] = mapped_column(LargeBinary)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_sites_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),)


class IndicatorValueRow(Base):
    """One indicator value at one site for one period, with its level and full provenance."""

    __tablename__ = "indicator_values"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    indicator_id: Mapped[str] = mapped_column(String(80))
    period_start: Mapped[date] = mapped_column(Date)
    freq: Mapped[str] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int] = mapped_column(SmallInteger)
    material: Mapped[str | None] = mapped_column(String(40))
    indicator_version: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    product: Mapped[str] = mapped_column(String(200))
    product_version: Mapped[str] = mapped_column(String(60))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    coverage: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("site_id", "indicator_id", "period_start", name="uq_indicator_values_key"),
        Index("ix_indicator_values_indicator_period", "indicator_id", "period_start"),
    )


class AlertRow(Base):
    """An alert: one episode of risk at (site, indicator, kind), from onset to resolution."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # observed | forecast | projected | system
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | acknowledged | resolved
    level: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float)
    units: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[float | None] = mapped_column(Float)
    threshold_level: Mapped[str] = mapped_column(String(16))
    material: Mapped[str | None] = mapped_column(String(40))
    onset: Mapped[date] = mapped_column(Date)
    period_start: Mapped[date] = mapped_column(Date)  # period of the value that set the current level
    last_period: Mapped[date] = mapped_column(Date)  # newest period at or above the alert level
    freq: Mapped[str] = mapped_column(String(8))
    periods_below: Mapped[int] = mapped_column(Integer, default=0)
    coverage: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(40))
    product: Mapped[str] = mapped_column(String(200))
    product_version: Mapped[str] = mapped_column(String(60))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    attribution: Mapped[str] = mapped_column(Text)
    provenance: Mapped[dict] = mapped_column(JSON, default=dict)
    sequence: Mapped[int] = mapped_column(Integer, default=1)  # bumps on every notifiable change
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    ack_note: Mapped[str | None] = mapped_column(Text)
    false_alarm: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(100))

    events: Mapped[list[AlertEventRow]] = relationship(passive_deletes=True, lazy="raise")

    __table_args__ = (Index("ix_alerts_episode", "site_id", "indicator_id", "kind", "status"),)


class AlertEventRow(Base):
    """The audit trail of an alert: every change, who made it and when."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event: Mapped[str] = mapped_column(String(20))  # opened | escalated | acknowledged | resolved
    level: Mapped[int | None] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float)
    period_start: Mapped[date | None] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class AlertCursorRow(Base):
    """The newest period whose level the alert engine has seen, per (site, indicator, kind)."""

    __tablename__ = "alert_cursors"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    indicator_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    last_period: Mapped[date] = mapped_column(Date)


class RunRow(Base):
    """One pipeline pass over one source and period."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), index=True)
    mode: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    sites: Mapped[int] = mapped_column(Integer, default=0)
    values_written: Mapped[int] = mapped_column(Integer, default=0)
    alerts_raised: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # running | ok | partial | failed
    error: Mapped[str | None] = mapped_column(Text)


class WatermarkRow(Base):
    """The last day of source data stored for one site: incremental fetching starts after it."""

    __tablename__ = "watermarks"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    product_version: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKeyRow(Base):
    """An API key, stored as a SHA-256 hash; the key itself is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10))  # admin | manager | reader
    site_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SubscriptionRow(Base):
    """A subscription to alerts of one site (or all) at or above a severity, delivered to one target."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    min_level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(10))  # webhook | email
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
