"""Indicator time series of a site, as JSON or CSV."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

import indicators
from api.auth import ReaderDep
from api.deps import StoreDep
from api.errors import ProblemError
from api.schemas import TimePoint, TimeSeriesPublic
from indicators import level_name
from monitor.alerts.episodes import period_end
from monitor.sources import SOURCES, attribution

router = APIRouter(prefix="/api/v1", tags=["timeseries"])
FORMATS = {"json": "application/json", "csv": "text/csv"}


def negotiate(request: Request, fmt: str | None) -> str:
    """The format asked by `format=` or else by the Accept header (JSON by default)."""
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    return "csv" if "text/csv" in accept and "application/json" not in accept else "json"


def series_attribution(sources: str, synthetic: bool, year: int) -> str:
    known = [s for s in sources.split("+") if s in SOURCES]
    text = " ".join(attribution(s, year) for s in known)
    if synthetic:
        return f"SYNTHETIC demo data, not Copernicus data. Real data would carry: {text}"
    return text


@router.get(
    "/sites/{site_id}/timeseries",
    summary="Time series of one indicator at one site",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 404: {}, 422: {}},
)
def read_timeseries(
    site_id: str,
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    indicator: Annotated[str, Query(description="Indicator id", examples=["freeze_thaw_cycles"])],
    start: Annotated[date | None, Query(description="First period (inclusive), ISO date")] = None,
    end: Annotated[date | None, Query(description="Last period start (inclusive), ISO date")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json or csv (else Accept)")] = None,
) -> Response:
    """Values, risk levels, units, provenance and attribution of one indicator at one site."""
    spec = indicators.get(indicator)
    site = store.get_site(site_id)
    if start and end and start > end:
        raise ProblemError(422, "start must not be after end", errors=[{"field": "query.start"}])
    frame = store.series([site_id], [indicator], start, end)
    fmt = negotiate(request, format)
    last = frame.iloc[-1] if len(frame) else None
    synthetic = bool(last["synthetic"]) if last is not None else False
    year = frame["period_start"].iloc[-1].year if len(frame) else date.today().year
    attr = series_attribution(str(last["source"]) if last is not None else "", synthetic, year)
    ends = [period_end(d, spec.freq) for d in frame["period_start"]]
    if fmt == "csv":
        out = pd.DataFrame(
            {
                "site": site_id,
                "indicator": indicator,
                "period_start": frame["period_start"],
                "period_end": ends,
                "value": frame["value"],
                "units": spec.units,
                "level": [level_name(int(v)) for v in frame["level"]],
                "material": frame["material"],
                "indicator_version": frame["indicator_version"],
                "source": frame["source"],
                "product": frame["product"],
                "product_version": frame["product_version"],
                "synthetic": frame["synthetic"].astype(bool),
                "attribution": attr,
            }
        )
        buf = io.StringIO()
        out.to_csv(buf, index=False)
        filename = f"{site_id}_{indicator}.csv"
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    body = TimeSeriesPublic(
        site=site_id,
        site_name=site.name,
        indicator=indicator,
        title=spec.title,
        units=spec.units,
        freq=spec.freq,
        indicator_version=str(last["indicator_version"]) if last is not None else spec.version,
        levels=spec.thresholds_for(None, site.thresholds.get(indicator)).as_dict(),
        source=str(last["source"]) if last is not None else None,
        product=str(last["product"]) if last is not None else None,
        product_version=str(last["product_version"]) if last is not None else None,
        synthetic=synthetic,
        attribution=attr,
        points=[
            TimePoint(
                period_start=r.period_start,
                period_end=e,
                value=None if pd.isna(r.value) else float(r.value),
                level=level_name(int(r.level)),
                material=None if pd.isna(r.material) else r.material,
            )
            for r, e in zip(frame.itertuples(), ends, strict=True)
        ],
    )
    return Response(body.model_dump_json(), media_type="application/json")
