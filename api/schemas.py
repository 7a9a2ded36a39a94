"""Response schemas of the public API (separate from the domain types)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from indicators import LEVELS, IndicatorSpec, level_name
from monitor.alerts.episodes import forecast_facts, period_end
from monitor.store.tables import AlertRow, RunRow


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class ParameterPublic(BaseModel):
    name: str
    default: Any
    units: str
    description: str


class ReferencePublic(BaseModel):
    citation: str
    used_for: str = ""
    url: str = ""


class IndicatorPublic(BaseModel):
    id: str
    title: str
    description: str
    family: str
    hazard: str
    units: str
    inputs: list[str]
    freq: str
    version: str
    parameters: list[ParameterPublic]
    materials: list[str]
    levels: dict[str, Any] = Field(description="Thresholds (with direction) or category → level mapping.")
    material_levels: dict[str, dict[str, Any]]
    references: list[ReferencePublic]
    provisional: bool
    provisional_note: str

    @classmethod
    def from_spec(cls, spec: IndicatorSpec) -> IndicatorPublic:
        return cls(
            id=spec.id,
            title=spec.title,
            description=spec.description,
            family=spec.family,
            hazard=spec.hazard,
            units=spec.units,
            inputs=list(spec.inputs),
            freq=spec.freq,
            version=spec.version,
            parameters=[
                ParameterPublic(name=n, default=p.default, units=p.units, description=p.description)
                for n, p in spec.parameters.items()
            ],
            materials=list(spec.materials),
            levels=spec.levels.as_dict(),
            material_levels={m: t.as_dict() for m, t in spec.material_levels.items()},
            references=[
                ReferencePublic(citation=r.citation, used_for=r.used_for, url=r.url) for r in spec.references
            ],
            provisional=spec.provisional,
            provisional_note=spec.provisional_note,
        )


class IndicatorCatalog(BaseModel):
    levels: list[str] = Field(default=list(LEVELS), description="Risk levels in increasing severity.")
    indicators: list[IndicatorPublic]


class Period(BaseModel):
    start: date
    end: date


class AlertPublic(BaseModel):
    """An alert: one episode of risk at a site, with everything needed to understand and verify it."""

    id: str
    site: str
    site_name: str | None = None
    indicator: str
    indicator_title: str | None = None
    kind: str = Field(description="observed | forecast | projected | system")
    status: str = Field(description="open | acknowledged | resolved")
    level: str
    severity: str
    value: float | None
    units: str
    threshold: float | None = Field(description="Threshold value of the current level (None if categorical).")
    threshold_level: str = Field(description="The level at which this rule opens an alert.")
    material: str | None = Field(description="The material whose levels decided, when materials differ.")
    period: Period = Field(description="Period of the value that set the current level.")
    onset: date = Field(description="First period at or above the alert level (forecasts: expected onset).")
    last_period: Period
    issued: datetime | None = Field(None, description="Forecast alerts: when the forecast was issued (UTC).")
    lead_time_days: int | None = Field(
        None, description="Forecast alerts: whole days from the forecast's issue day to the onset."
    )
    expected: Period | None = Field(
        None, description="Forecast alerts: first and last valid day forecast at or above the alert level."
    )
    data_quality: dict[str, Any]
    provenance: dict[str, Any]
    attribution: str
    synthetic: bool
    sequence: int
    opened_at: datetime
    updated_at: datetime
    acknowledged: dict[str, Any] | None = None
    resolved: dict[str, Any] | None = None
    links: list[Link]

    @classmethod
    def from_row(cls, row: AlertRow, base: str, site_name: str | None = None, title: str | None = None):
        forecast = forecast_facts(row)
        return cls(
            id=row.id,
            site=row.site_id,
            site_name=site_name,
            indicator=row.indicator_id,
            indicator_title=title,
            kind=row.kind,
            status=row.status,
            level=level_name(row.level),
            severity=level_name(row.level),
            value=row.value,
            units=row.units,
            threshold=row.threshold,
            threshold_level=row.threshold_level,
            material=row.material,
            period=Period(start=row.period_start, end=period_end(row.period_start, row.freq)),
            onset=row.onset,
            last_period=Period(start=row.last_period, end=period_end(row.last_period, row.freq)),
            issued=forecast.issued if forecast else None,
            lead_time_days=forecast.lead_time_days if forecast else None,
            expected=Period(start=forecast.expected_start, end=forecast.expected_end) if forecast else None,
            data_quality={"coverage": row.coverage, "synthetic": row.synthetic},
            provenance={
                **(row.provenance or {}),
                "source": row.source,
                "product": row.product,
                "product_version": row.product_version,
            },
            attribution=row.attribution,
            synthetic=row.synthetic,
            sequence=row.sequence,
            opened_at=row.opened_at,
            updated_at=row.updated_at,
            acknowledged=(
                {
                    "at": row.acknowledged_at,
                    "by": row.acknowledged_by,
                    "note": row.ack_note,
                    "false_alarm": row.false_alarm,
                }
                if row.acknowledged_at
                else None
            ),
            resolved={"at": row.resolved_at, "by": row.resolved_by} if row.resolved_at else None,
            links=[
                Link(href=f"{base}/api/v1/alerts/{row.id}", rel="self", type="application/json"),
                Link(href=f"{base}/api/v1/sites/{row.site_id}", rel="site", type="application/geo+json"),
                Link(
                    href=f"{base}/api/v1/sites/{row.site_id}/timeseries?indicator={row.indicator_id}",
                    rel="timeseries",
                    type="application/json",
                ),
                Link(
                    href=f"{base}/api/v1/sites/{row.site_id}/timeseries?indicator={row.indicator_id}&format=csv",
                    rel="timeseries",
                    type="text/csv",
                ),
            ],
        )


class AlertList(BaseModel):
    numberMatched: int  # noqa: N815 - OGC API Features names
    numberReturned: int  # noqa: N815
    alerts: list[AlertPublic]
    links: list[Link]


class TimePoint(BaseModel):
    period_start: date
    period_end: date
    value: float | None
    level: str
    material: str | None


class TimeSeriesPublic(BaseModel):
    site: str
    site_name: str
    indicator: str
    title: str
    units: str
    freq: str
    indicator_version: str | None
    levels: dict[str, Any]
    source: str | None
    product: str | None
    product_version: str | None
    synthetic: bool
    attribution: str
    points: list[TimePoint]


class ForecastPoint(BaseModel):
    valid_day: date = Field(description="The day the forecast value is for.")
    lead_days: int = Field(description="Whole days from the forecast's issue day to the valid day.")
    period_start: date
    period_end: date = Field(description="A count of days in a month or year is counted to the valid day.")
    value: float | None
    level: str
    material: str | None


class ForecastSeriesPublic(BaseModel):
    """The newest forecast of one indicator at one site: never mixed with the observed time series."""

    site: str
    site_name: str
    indicator: str
    title: str
    units: str
    freq: str
    levels: dict[str, Any]
    source: str | None = Field(description="Source whose forecast gives the values.")
    product: str | None
    product_version: str | None
    issued: datetime | None = Field(description="When the forecast was issued (UTC); None: no forecast.")
    observed_until: date | None = Field(description="Newest observed day when the forecast was stored.")
    synthetic: bool
    attribution: str
    points: list[ForecastPoint]


class RunPublic(BaseModel):
    id: str
    source: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    period_start: date | None
    period_end: date | None
    sites: int
    values_written: int
    alerts_raised: int
    error: str | None

    @classmethod
    def from_row(cls, row: RunRow) -> RunPublic:
        return cls.model_validate(row, from_attributes=True)
