"""Alert episodes: one alert per ongoing condition at (site, indicator, kind), from onset to resolution.

Observed episodes (`evaluate`): a period at or above the alert level opens an episode (or raises its
level: escalation); the episode resolves by itself only after `resolve_after` consecutive periods below
the alert level (hysteresis: one quiet period inside a spell does not close it). Periods without data
neither count nor reset.

Forecast episodes (`evaluate_forecast`): while the newest forecast issue shows a valid day at or above the
alert level, one forecast alert per (site, indicator) says when (onset, lead time from the issue day), how
bad (the peak) and for how long (the expected period). A newer issue updates it; only a peak worse than
any notified before notifies again (escalation), so forecasts wavering from issue to issue do not flap.
It resolves when a newer issue no longer shows the exceedance, or when its onset has passed into observed
data (`expire_forecasts`): observed episodes take over from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indicators import LEVEL_CODES, IndicatorSpec, Thresholds, level_name
from monitor.store.repository import driver_values, execute_columns, insert_for, new_id, utcnow
from monitor.store.tables import AlertCursorRow, AlertEventRow, AlertRow
from sites import SiteSet

ACTIVE = ("open", "acknowledged")


@dataclass(frozen=True)
class AlertRule:
    """When an indicator's level opens an alert, and what data it covers."""

    min_level: str = "high"
    lookback_days: int = 365
    kind: str = "observed"


def period_floor(day: date, freq: str) -> date:
    """First day of the period (of frequency `freq`) that contains `day`."""
    if freq == "YS":
        return date(day.year, 1, 1)
    if freq == "MS":
        return date(day.year, day.month, 1)
    return day


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
    recs = records[complete & (records["period_start"] > horizon)]
    if recs.empty:
        return 0
    # One query per indicator for all sites (no IN list of 100,000 ids), then column-wise: drop the
    # periods each cursor has judged already, and walk only the sites where something can happen.
    cursors = dict(
        session.execute(
            select(AlertCursorRow.site_id, AlertCursorRow.last_period).where(
                AlertCursorRow.indicator_id == spec.id, AlertCursorRow.kind == rule.kind
            )
        ).all()
    )
    judged_through = pd.to_datetime(recs["site_id"].map(cursors))
    recs = recs[
        judged_through.isna().to_numpy() | (pd.to_datetime(recs["period_start"]) > judged_through).to_numpy()
    ]
    if recs.empty:
        return 0
    in_recs = set(recs["site_id"].unique())
    active = {
        a.site_id: a
        for a in session.scalars(
            select(AlertRow).where(
                AlertRow.indicator_id == spec.id, AlertRow.kind == rule.kind, AlertRow.status.in_(ACTIVE)
            )
        )
        if a.site_id in in_recs
    }
    # a site without an active episode and with no period at the alert level only moves its cursor
    eventful = set(recs.loc[recs["level"].to_numpy() >= min_code, "site_id"]) | set(active)
    lasts = recs.groupby("site_id", sort=True)["period_start"].max()
    walked = recs[recs["site_id"].isin(eventful)].sort_values(["site_id", "period_start"])
    raised = 0
    for site_id, group in walked.groupby("site_id", sort=True):
        overrides = sites[site_id].thresholds.get(spec.id) if site_id in sites else None
        alert = active.get(site_id)
        for row in group.itertuples(index=False):
            level = int(row.level)
            if level < 0:
                continue
            if level >= min_code:
                if alert is None:
                    alert = open_episode(session, spec, row, rule, overrides, attribution, now)
                    active[site_id] = alert
                    raised += 1
                elif level > alert.level:
                    _escalate(session, spec, alert, row, overrides, now)
                    raised += 1
                else:
                    if level == alert.level and _more_extreme(spec, row.value, alert.value):
                        alert.value = float_or_none(row.value)
                        alert.period_start = row.period_start
                    alert.last_period = row.period_start
                    alert.periods_below = 0
                    alert.updated_at = now
            elif alert is not None:
                alert.periods_below += 1
                alert.updated_at = now
                if alert.periods_below >= spec.resolve_after:
                    resolve_episode(session, alert, row.period_start, now)
                    del active[site_id]
                    alert = None
    _advance_cursors(session, spec.id, rule.kind, lasts)
    return raised


def _advance_cursors(session: Session, indicator_id: str, kind: str, lasts: pd.Series) -> None:
    """Set the cursors of (site, indicator, kind) to the newest judged period (`lasts`, by site): one
    upsert run by the driver on columns (`execute_columns` on SQLite, batches elsewhere), instead of one
    parameter dict per site, which cost a fifth of the alert step at 100,000 sites."""
    table = AlertCursorRow.__table__
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "indicator_id", "kind"], set_={"last_period": stmt.excluded.last_period}
    )
    n = len(lasts)
    columns = {
        "site_id": driver_values(pd.Series(lasts.index, dtype=object)),
        "indicator_id": [indicator_id] * n,
        "kind": [kind] * n,
        "last_period": driver_values(pd.Series(pd.to_datetime(lasts.to_numpy()))),
    }
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        execute_columns(conn, stmt, table, columns)
        return
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    for i in range(0, n, 20_000):
        conn.execute(stmt, rows[i : i + 20_000])


def float_or_none(value) -> float | None:
    """A stored value as a plain float, or None when missing or NaN (what alert rows and JSON hold)."""
    return None if value is None or pd.isna(value) else float(value)


def _more_extreme(spec: IndicatorSpec, new, old) -> bool:
    new, old = float_or_none(new), float_or_none(old)
    if new is None:
        return False
    if old is None:
        return True
    lower = isinstance(spec.levels, Thresholds) and spec.levels.direction == "lower_is_worse"
    return new < old if lower else new > old


def _provenance(row) -> dict:
    """Where a stored value came from: source, product and versions."""
    return {
        "source": row.source,
        "product": row.product,
        "product_version": row.product_version,
        "indicator_version": row.indicator_version,
        "synthetic": bool(row.synthetic),
    }


def open_episode(
    session,
    spec,
    row,
    rule,
    overrides,
    attribution,
    now,
    *,
    onset: date | None = None,
    last_period: date | None = None,
    provenance: dict | None = None,
    note: str | None = None,
) -> AlertRow:
    """A new episode from the stored value `row` (observed: its period is the onset; a forecast passes its
    onset, last expected period, provenance and the note of its history entry)."""
    level = int(row.level)
    alert = AlertRow(
        id=new_id("alr"),
        site_id=row.site_id,
        indicator_id=spec.id,
        kind=rule.kind,
        status="open",
        level=level,
        value=float_or_none(row.value),
        units=spec.units,
        threshold=threshold_of(spec, level, row.material, overrides),
        threshold_level=rule.min_level,
        material=row.material,
        onset=onset or row.period_start,
        period_start=row.period_start,
        last_period=last_period or row.period_start,
        freq=spec.freq,
        periods_below=0,
        coverage=float_or_none(getattr(row, "coverage", None)),
        source=row.source,
        product=row.product,
        product_version=row.product_version,
        synthetic=bool(row.synthetic),
        attribution=attribution,
        provenance=provenance or _provenance(row),
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
            note=note,
        )
    )
    return alert


def _escalate(session, spec, alert: AlertRow, row, overrides, now) -> None:
    level = int(row.level)
    alert.level = level
    alert.value = float_or_none(row.value)
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


def resolve_episode(
    session, alert: AlertRow, period: date, now, actor: str = "system", note: str | None = None
) -> None:
    """Close an episode at `period` and record who closed it and why in its history."""
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
    resolve_episode(
        session, alert, alert.last_period, now or utcnow(), actor=actor, note=note or "resolved by hand"
    )


# --- forecast episodes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastFacts:
    """What a forecast alert adds to an alert: the issue it comes from and when the condition is expected."""

    issued: datetime
    lead_time_days: int  # whole days from the issue day to the onset
    expected_start: date  # onset: first valid day at or above the alert level
    expected_end: date  # last valid day at or above the alert level
    peak_day: date


def forecast_facts(alert) -> ForecastFacts | None:
    """The forecast facts of a forecast alert (from its provenance); None for other kinds."""
    if getattr(alert, "kind", None) != "forecast":
        return None
    p = getattr(alert, "provenance", None) or {}
    try:
        issued = datetime.fromisoformat(p["issued"])
        expected = p["expected"]
        return ForecastFacts(
            issued if issued.tzinfo else issued.replace(tzinfo=UTC),
            int(p["lead_time_days"]),
            date.fromisoformat(expected["start"]),
            date.fromisoformat(expected["end"]),
            date.fromisoformat(p["peak_day"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _issue_text(issued: datetime) -> str:
    return issued.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _period_passed(alert: AlertRow, observed_until: date) -> bool:
    """Whether the whole expected period of a forecast alert lies in observed data."""
    facts = forecast_facts(alert)
    expected_end = facts.expected_end if facts is not None else alert.onset
    return expected_end <= observed_until


def _handed_over(alert: AlertRow, observed_until: date) -> str:
    facts = forecast_facts(alert)
    expected_end = facts.expected_end if facts is not None else alert.onset
    return (
        f"expected period {alert.onset.isoformat()} to {expected_end.isoformat()} reached by observed "
        f"data (through {observed_until.isoformat()}): observed alerts take over"
    )


def expire_forecasts(
    session: Session,
    indicator_ids: Iterable[str],
    observed_until: date,
    now: datetime | None = None,
) -> int:
    """Resolve the forecast alerts of these indicators whose whole expected period (onset to the last valid
    day at or above the alert level) has passed into observed data: observed episodes take over. An alert
    whose period is still partly ahead stays as it is (the next issue moves its onset), so a multi-day
    exceedance is not closed and reopened, and notified again, as its first days pass. Run after
    `evaluate_forecast` of the newest issue. Returns how many were resolved."""
    ids = list(indicator_ids)
    if not ids:
        return 0
    now = now or utcnow()
    candidates = session.scalars(
        select(AlertRow).where(
            AlertRow.indicator_id.in_(ids),
            AlertRow.kind == "forecast",
            AlertRow.status.in_(ACTIVE),
            AlertRow.onset <= observed_until,  # the expected period starts at the onset
        )
    ).all()
    n = 0
    for alert in candidates:
        if _period_passed(alert, observed_until):
            resolve_episode(session, alert, observed_until, now, note=_handed_over(alert, observed_until))
            n += 1
    return n


def _exceeding(recs: pd.DataFrame, min_code: int, baseline: Mapping[str, int], observed_until: date):
    """Which forecast rows exceed: level at or above `min_code` and, in the period of `observed_until`
    only, above the level its count of days had already reached (a new period starts from nothing)."""
    level = recs["level"].to_numpy()
    if not baseline or recs.empty:
        return level >= min_code
    freq = str(recs["freq"].iloc[0])
    current = pd.to_datetime(recs["period_start"]).dt.date.to_numpy() == period_floor(observed_until, freq)
    floor = recs["site_id"].map(baseline).fillna(-1).to_numpy()
    return (level >= min_code) & (~current | (level > floor))


def _peaks(spec: IndicatorSpec, above: pd.DataFrame) -> pd.DataFrame:
    """Per site the worst exceeding row: highest level, then most extreme value, then earliest;
    with its onset, expected end and last period."""
    lower = isinstance(spec.levels, Thresholds) and spec.levels.direction == "lower_is_worse"
    ranked = above.assign(_rank=above["value"].astype(float) * (1.0 if lower else -1.0))
    ranked = ranked.sort_values(
        ["site_id", "level", "_rank", "valid_day"], ascending=[True, False, True, True], na_position="last"
    )
    peaks = ranked.drop_duplicates("site_id", keep="first").drop(columns="_rank")
    by_site = above.groupby("site_id", sort=False)
    return peaks.assign(
        onset=peaks["site_id"].map(by_site["valid_day"].min()),
        expected_end=peaks["site_id"].map(by_site["valid_day"].max()),
        last_period=peaks["site_id"].map(by_site["period_start"].last()),  # rows are in valid-day order
    )


def evaluate_forecast(
    session: Session,
    spec: IndicatorSpec,
    records: pd.DataFrame,
    sites: SiteSet,
    rule: AlertRule,
    attribution: str,
    issued: datetime,
    observed_until: date,
    baseline: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> int:
    """Advance the forecast episodes of one indicator with a new forecast issue; returns alerts opened or
    escalated.

    `records` are forecast values (site_id, valid_day, period_start, freq, value, level, material, source,
    product, product_version, indicator_version, synthetic; optionally coverage). A site's forecast
    exceeds on a valid day after `observed_until` whose level is at or above `rule.min_level` and, in the
    period of `observed_until`, above the site's `baseline` level (what a count of days already reached in
    observed data: only a crossing still to come is a forecast; a forecast day in the next period counts
    from nothing). An active forecast alert the issue still shows is updated in place (new onset and lead
    time, notified again only when worse), even when its former onset has passed. Sites whose records are
    all without data are left as they are. While an observed episode of the indicator is active at a site
    it covers the condition: no forecast episode is opened there, and an open one closes. Evaluating the
    same issue again changes nothing.
    """
    if records.empty:
        return 0
    now = now or utcnow()
    min_code = LEVEL_CODES[rule.min_level]
    recs = records[(records["valid_day"] > observed_until) & (records["level"] >= 0)]
    if recs.empty:
        return 0
    recs = recs.sort_values(["site_id", "valid_day"])
    exceeding = _exceeding(recs, min_code, baseline or {}, observed_until)
    above = recs[exceeding]
    # the active alerts of the indicator are few: read them all rather than name every site in the query
    with_data = set(recs["site_id"].unique())
    active: dict[tuple[str, str], AlertRow] = {
        (a.site_id, a.kind): a
        for a in session.scalars(
            select(AlertRow).where(
                AlertRow.indicator_id == spec.id,
                AlertRow.kind.in_((rule.kind, "observed")),
                AlertRow.status.in_(ACTIVE),
            )
        )
        if a.site_id in with_data
    }
    peaks = {p.site_id: p for p in _peaks(spec, above).itertuples(index=False)} if not above.empty else {}
    # only sites with a day above the rule or an active forecast alert need a look (the others change nothing)
    relevant = sorted(set(peaks) | {s for s, k in active if k == rule.kind})
    issued_day = issued.astimezone(UTC).date()
    raised = 0
    for site_id in relevant:
        alert = active.get((site_id, rule.kind))
        if (site_id, "observed") in active:
            if alert is not None:
                resolve_episode(
                    session, alert, observed_until, now, note="an observed alert covers the condition"
                )
            continue
        peak = peaks.get(site_id)
        if peak is None:
            if alert is not None:
                dropped = (
                    f"the forecast issued {_issue_text(issued)} no longer shows {rule.min_level} or above"
                )
                passed = _period_passed(alert, observed_until)
                resolve_episode(
                    session,
                    alert,
                    observed_until,
                    now,
                    note=_handed_over(alert, observed_until) if passed else dropped,
                )
            continue
        overrides = sites[site_id].thresholds.get(spec.id) if site_id in sites else None
        onset, end, last_period = peak.onset, peak.expected_end, peak.last_period
        facts = {
            "issued": issued.astimezone(UTC).isoformat(timespec="seconds"),
            "lead_time_days": (onset - issued_day).days,
            "expected": {"start": onset.isoformat(), "end": end.isoformat()},
            "peak_day": peak.valid_day.isoformat(),
            "observed_until": observed_until.isoformat(),
        }
        if alert is None:
            rows = (peak, onset, last_period, facts)
            active[(site_id, rule.kind)] = _open_forecast(
                session, spec, rule, overrides, attribution, rows, now
            )
            raised += 1
        else:
            raised += _update_forecast(
                session, spec, alert, overrides, attribution, peak, onset, last_period, facts, now
            )
    return raised


def _forecast_provenance(peak, facts: dict) -> dict:
    return {**_provenance(peak), **facts}


def _forecast_note(spec: IndicatorSpec, level: int, value, facts: dict) -> str:
    shown = "–" if float_or_none(value) is None else f"{float_or_none(value):g} {spec.units}".strip()
    return (
        f"forecast issued {facts['issued']}: {level_name(level)} expected {facts['expected']['start']} to "
        f"{facts['expected']['end']} (lead {facts['lead_time_days']} d), peak {shown} on {facts['peak_day']}"
    )


def _open_forecast(session, spec, rule, overrides, attribution, rows, now) -> AlertRow:
    peak, onset, last_period, facts = rows
    return open_episode(
        session,
        spec,
        peak,
        rule,
        overrides,
        attribution,
        now,
        onset=onset,
        last_period=last_period,
        provenance=_forecast_provenance(peak, facts),
        note=_forecast_note(spec, int(peak.level), peak.value, facts),
    )


def _update_forecast(
    session, spec, alert: AlertRow, overrides, attribution, peak, onset, last_period, facts, now
) -> int:
    """A newer issue for an open forecast alert: new onset, period and peak; escalation (notified) only when
    the peak is worse than every level notified so far. Returns 1 when escalated."""
    level = int(peak.level)
    provenance = _forecast_provenance(peak, facts)
    before = (alert.onset, alert.level, alert.value, alert.last_period, dict(alert.provenance or {}))
    if before == (onset, level, float_or_none(peak.value), last_period, provenance):
        return 0
    notified = session.scalar(
        select(func.max(AlertEventRow.level)).where(
            AlertEventRow.alert_id == alert.id, AlertEventRow.event.in_(("opened", "escalated"))
        )
    )
    condition_changed = before[:4] != (onset, level, float_or_none(peak.value), last_period)
    alert.onset, alert.level, alert.value = onset, level, float_or_none(peak.value)
    alert.period_start, alert.last_period, alert.material = peak.period_start, last_period, peak.material
    alert.threshold = threshold_of(spec, level, peak.material, overrides)
    alert.coverage = float_or_none(getattr(peak, "coverage", None))
    alert.product, alert.product_version = peak.product, peak.product_version
    alert.attribution, alert.provenance, alert.updated_at = attribution, provenance, now
    escalated = notified is None or level > notified
    if escalated:
        alert.sequence += 1
        if alert.status == "acknowledged":
            alert.status = "open"  # worse than what was acknowledged: it needs attention again
    if escalated or condition_changed:
        session.add(
            AlertEventRow(
                alert_id=alert.id,
                at=now,
                event="escalated" if escalated else "updated",
                level=level,
                value=alert.value,
                period_start=peak.period_start,
                actor="system",
                note=_forecast_note(spec, level, peak.value, facts),
            )
        )
    return int(escalated)


class AlertStateError(ValueError):
    """The requested change does not apply to the alert in its current state."""
