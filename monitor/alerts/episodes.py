"""Alert episodes: one alert per ongoing condition at (site, indicator, kind), from onset to resolution.

A period at or above the alert level opens an episode (or raises its level: escalation); the episode
resolves by itself only after `resolve_after` consecutive periods below the alert level (hysteresis:
one quiet period inside a spell does not close it). Periods without data neither count nor reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from indicators import LEVEL_CODES, IndicatorSpec, Thresholds, level_name
from monitor.store.repository import new_id, utcnow
from monitor.store.tables import AlertCursorRow, AlertEventRow, AlertRow
from sites import SiteSet

ACTIVE = ("open", "acknowledged")


@dataclass(frozen=True)
class AlertRule:
    """When an indicator's level opens an alert, and what data it covers."""

    min_level: str = "high"
    lookback_days: int = 365
    kind: str = "observed"


def period_end(start: date, freq: str) -> date:
    """Last day of the period that begins on `start`."""
    ts = pd.Timestamp(start)
    if freq == "D":
        return start
    if freq == "MS":
        return (ts + pd.offsets.MonthEnd(0)).date()
    if freq == "YS":
        return date(start.year, 12, 31)
    return (ts + pd.tseries.frequencies.to_offset(freq) - timedelta(days=1)).date()


def threshold_of(
    spec: IndicatorSpec, level: int, material: str | None, overrides: dict | None
) -> float | None:
    """The threshold value of `level` in the scheme that decided it (None for categorical indicators)."""
    scheme = spec.thresholds_for(material if material in spec.material_levels else None, overrides)
    if isinstance(scheme, Thresholds) and level > 0:
        return getattr(scheme, level_name(level))
    return None


def evaluate(
    session: Session,
    spec: IndicatorSpec,
    records: pd.DataFrame,
    sites: SiteSet,
    rule: AlertRule,
    attribution: str,
    data_end: date,
    now: datetime | None = None,
) -> int:
    """Advance the episodes of one indicator with newly stored values; returns alerts opened or escalated.

    `records` has the columns of stored indicator values (site_id, period_start, value, level, material,
    source, product, product_version, synthetic, coverage). Only periods after each (site, indicator,
    kind) cursor and within `rule.lookback_days` of the newest period are considered, so a rerun over
    the same data changes nothing. Only complete periods (ending on or before `data_end`) are judged.
    """
    if records.empty:
        return 0
    now = now or utcnow()
    min_code = LEVEL_CODES[rule.min_level]
    newest = max(records["period_start"])
    horizon = newest - timedelta(days=rule.lookback_days)
    starts = pd.to_datetime(records["period_start"])
    ends = {"MS": starts + pd.offsets.MonthEnd(0), "YS": starts + pd.offsets.YearEnd(0)}.get(
        spec.freq, starts
    )
    complete = ends <= pd.Timestamp(data_end)
    recs = records[complete & (records["period_start"] > horizon)].sort_values(["site_id", "period_start"])
    if recs.empty:
        return 0
    site_ids = sorted(recs["site_id"].unique())
    cursors = {
        c.site_id: c
        for c in session.scalars(
            select(AlertCursorRow).where(
                AlertCursorRow.site_id.in_(site_ids),
                AlertCursorRow.indicator_id == spec.id,
                AlertCursorRow.kind == rule.kind,
            )
        )
    }
    active = {
        a.site_id: a
        for a in session.scalars(
            select(AlertRow).where(
                AlertRow.site_id.in_(site_ids),
                AlertRow.indicator_id == spec.id,
                AlertRow.kind == rule.kind,
                AlertRow.status.in_(ACTIVE),
            )
        )
    }
    raised = 0
    for site_id, group in recs.groupby("site_id", sort=True):
        cursor = cursors.get(site_id)
        if cursor is not None:
            group = group[group["period_start"] > cursor.last_period]
        if group.empty:
            continue
        overrides = sites[site_id].thresholds.get(spec.id) if site_id in sites else None
        alert = active.get(site_id)
        for row in group.itertuples(index=False):
            level = int(row.level)
            if level < 0:
                continue
            if level >= min_code:
                if alert is None:
                    alert = _open(session, spec, row, rule, overrides, attribution, now)
                    active[site_id] = alert
                    raised += 1
                elif level > alert.level:
                    _escalate(session, spec, alert, row, overrides, now)
                    raised += 1
                else:
                    if level == alert.level and _more_extreme(spec, row.value, alert.value):
                        alert.value = _num(row.value)
                        alert.period_start = row.period_start
                    alert.last_period = row.period_start
                    alert.periods_below = 0
                    alert.updated_at = now
            elif alert is not None:
                alert.periods_below += 1
                alert.updated_at = now
                if alert.periods_below >= spec.resolve_after:
                    _resolve(session, alert, row.period_start, now)
                    del active[site_id]
                    alert = None
        last = max(group["period_start"])
        if cursor is None:
            session.add(
                AlertCursorRow(site_id=site_id, indicator_id=spec.id, kind=rule.kind, last_period=last)
            )
        else:
            cursor.last_period = last
    return raised


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _more_extreme(spec: IndicatorSpec, new, old) -> bool:
    new, old = _num(new), _num(old)
    if new is None:
        return False
    if old is None:
        return True
    lower = isinstance(spec.levels, Thresholds) and spec.levels.direction == "lower_is_worse"
    return new < old if lower else new > old


def _open(session, spec, row, rule, overrides, attribution, now) -> AlertRow:
    level = int(row.level)
    alert = AlertRow(
        id=new_id("alr"),
        site_id=row.site_id,
        indicator_id=spec.id,
        kind=rule.kind,
        status="open",
        level=level,
        value=_num(row.value),
        units=spec.units,
        threshold=threshold_of(spec, level, row.material, overrides),
        threshold_level=rule.min_level,
        material=row.material,
        onset=row.period_start,
        period_start=row.period_start,
        last_period=row.period_start,
        freq=spec.freq,
        periods_below=0,
        coverage=_num(row.coverage),
        source=row.source,
        product=row.product,
        product_version=row.product_version,
        synthetic=bool(row.synthetic),
        attribution=attribution,
        provenance={
            "source": row.source,
            "product": row.product,
            "product_version": row.product_version,
            "indicator_version": row.indicator_version,
            "synthetic": bool(row.synthetic),
        },
        sequence=1,
        opened_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.add(
        AlertEventRow(
            alert_id=alert.id,
            at=now,
            event="opened",
            level=level,
            value=alert.value,
            period_start=row.period_start,
            actor="system",
        )
    )
    return alert


def _escalate(session, spec, alert: AlertRow, row, overrides, now) -> None:
    level = int(row.level)
    alert.level = level
    alert.value = _num(row.value)
    alert.period_start = row.period_start
    alert.last_period = row.period_start
    alert.material = row.material
    alert.threshold = threshold_of(spec, level, row.material, overrides)
    alert.periods_below = 0
    alert.sequence += 1
    alert.updated_at = now
    if alert.status == "acknowledged":
        alert.status = "open"  # worse than what was acknowledged: it needs attention again
    session.add(
        AlertEventRow(
            alert_id=alert.id,
            at=now,
            event="escalated",
            level=level,
            value=alert.value,
            period_start=row.period_start,
            actor="system",
        )
    )


def _resolve(
    session, alert: AlertRow, period: date, now, actor: str = "system", note: str | None = None
) -> None:
    alert.status = "resolved"
    alert.resolved_at = now
    alert.resolved_by = actor
    alert.sequence += 1
    alert.updated_at = now
    session.add(
        AlertEventRow(
            alert_id=alert.id,
            at=now,
            event="resolved",
            level=alert.level,
            period_start=period,
            actor=actor,
            note=note or f"below {alert.threshold_level} for {alert.periods_below} period(s)",
        )
    )


def severity(level: int) -> str:
    """The severity name of a level code."""
    return level_name(level)


def acknowledge(
    session: Session,
    alert: AlertRow,
    actor: str,
    note: str | None,
    false_alarm: bool,
    now: datetime | None = None,
) -> None:
    """Mark an open alert as seen ("handling it"); a `false_alarm` mark feeds threshold tuning."""
    if alert.status == "resolved":
        raise AlertStateError(f"alert {alert.id} is resolved and cannot be acknowledged")
    now = now or utcnow()
    alert.status = "acknowledged"
    alert.acknowledged_at, alert.acknowledged_by, alert.ack_note = now, actor, note
    alert.false_alarm = bool(false_alarm)
    alert.updated_at = now
    session.add(
        AlertEventRow(
            alert_id=alert.id,
            at=now,
            event="acknowledged",
            level=alert.level,
            actor=actor,
            note=note if not false_alarm else f"[false alarm] {note or ''}".strip(),
        )
    )


def resolve_by_hand(
    session: Session, alert: AlertRow, actor: str, note: str | None, now: datetime | None = None
):
    """Close an episode by hand (a later period at the alert level opens a new one)."""
    if alert.status == "resolved":
        raise AlertStateError(f"alert {alert.id} is already resolved")
    _resolve(session, alert, alert.last_period, now or utcnow(), actor=actor, note=note or "resolved by hand")


class AlertStateError(ValueError):
    """The requested change does not apply to the alert in its current state."""
