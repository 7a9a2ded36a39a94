"""Tables of alert delivery: the outbox of webhook and e-mail messages, and subscription options.

They share `Base` (and so the metadata) of `monitor.store.tables`; migration 0002 creates them.
E-mail addresses stay in `subscriptions.target` only: a delivery names its subscription, never the address,
so deleting a subscription (cascade) removes every trace of the address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.tables import Base, UTCDateTime


class SubscriptionOptionsRow(Base):
    """Delivery options of one subscription: daily digest, and the token of its unsubscribe link."""

    __tablename__ = "subscription_options"

    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    unsubscribe_token: Mapped[str] = mapped_column(String(64), unique=True)


class AlertDeliveryMarkRow(Base):
    """The newest `sequence` of an alert that `enqueue` has handled (whether or not anyone subscribed)."""

    __tablename__ = "alert_delivery_marks"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertDeliveryRow(Base):
    """One message of one alert change to one subscription: the outbox row, sent at least once.

    `id` is stable across retries (the webhook-id receivers deduplicate by); `payload` is the alert as it
    was at `sequence`, so every try sends the same content.
    """

    __tablename__ = "alert_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(12))  # opened | escalated | resolved
    level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(10))  # webhook | email
    status: Mapped[str] = mapped_column(String(10))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_id", "sequence", name="uq_alert_deliveries_key"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_subscription_id", "subscription_id"),
    )
