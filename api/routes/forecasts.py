"""Forecasts: the newest forecast values of an indicator at a site, apart from its observed series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from api.schemas import ForecastPoint, ForecastSeriesPublic
from indicators import level_name
from monitor.alerts.episodes import period_end
from monitor.pipeline import forecast_indicators
from monitor.store.forecasts import forecast_values

router = APIRouter(prefix="/api/v1", tags=["forecasts"], responses=COMMON_ERRORS)


@router.get(
    "/sites/{site_id}/forecasts",
    summary="Forecast values of one indicator at one site",
    responses=problem_responses(404, 422),
)
def read_forecasts(
    site_id: Annotated[str, Path(description="Site id", examples=["cologne_cathedral"])],
    indicator: Annotated[str, Query(description="Indicator id", examples=["flood_return_period"])],
    store: StoreDep,
    _: ReaderDep,
) -> ForecastSeriesPublic:
    """The newest forecast issue's values by valid day, with lead time, level, units and provenance.

    Empty points (and no issue time) when no forecast covers the indicator at the site yet; 422 for an
    indicator that is never forecast.
    """
    spec = indicators.get(indicator)
    known = [s.id for s in forecast_indicators()]
    if spec.id not in known:
        raise ProblemError(
            422,
            f"{spec.id} is never forecast; forecast indicators: {', '.join(known)}",
            errors=[{"field": "query.indicator"}],
            forecast_indicators=known,
        )
    site = store.get_site(site_id)
    rows, issues = forecast_values(store, site_id, spec.id)
    issue = issues.get(rows[0].source) if rows else None
    return ForecastSeriesPublic(
        site=site.id,
        site_name=site.name,
        indicator=spec.id,
        title=spec.title,
        units=spec.units,
        freq=spec.freq,
        levels=spec.levels.as_dict(),
        source=issue.source if issue else None,
        product=issue.product if issue else None,
        product_version=issue.product_version if issue else None,
        issued=issue.issued if issue else None,
        observed_until=issue.observed_until if issue else None,
        synthetic=bool(issue and issue.synthetic),
        attribution=issue.attribution if issue else "",
        points=[
            ForecastPoint(
                valid_day=r.valid_day,
                lead_days=r.lead_days,
                period_start=r.period_start,
                period_end=min(period_end(r.period_start, r.freq), r.valid_day),
                value=r.value,
                level=level_name(r.level),
                material=r.material,
            )
            for r in rows
            if issue is not None and r.source == issue.source
        ],
    )
