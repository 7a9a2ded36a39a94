"""Daily source variables of a site, as stored (units, source, product version, attribution)."""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from api.auth import ReaderDep
from api.deps import StoreDep, VariablesDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from monitor.pipeline import variable_sources
from monitor.sources import SOURCES, attribution

router = APIRouter(prefix="/api/v1", tags=["variables"], responses=COMMON_ERRORS)


class DailyValue(BaseModel):
    time: date
    value: float | None


class VariableSeries(BaseModel):
    name: str
    units: str
    source: str
    product: str
    product_version: str
    synthetic: bool
    attribution: str
    values: list[DailyValue]


class SiteVariables(BaseModel):
    site: str
    start: date | None
    end: date | None
    variables: list[VariableSeries] = Field(description="One entry per requested variable.")


def _attribution(source: str, cube_attr: str, synthetic: bool, year: int) -> str:
    text = cube_attr or attribution(source, year)
    if synthetic and "SYNTHETIC" not in text.upper():
        return f"SYNTHETIC demo data, not Copernicus data. Real data would carry: {attribution(source, year)}"
    return text


@router.get(
    "/sites/{site_id}/variables",
    summary="Daily source variables of a site, as stored",
    responses={
        200: {
            "description": "Daily values per variable (JSON) or a long CSV table.",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(404),
    },
    response_model=SiteVariables,
)
def read_variables(
    site_id: Annotated[str, Path(description="Site id", examples=["athens"])],
    request: Request,
    store: StoreDep,
    variables: VariablesDep,
    _: ReaderDep,
    name: Annotated[
        list[str] | None,
        Query(
            description="Variable name(s), repeated or comma-separated; default: every variable",
            examples=[["tas", "pr"]],
        ),
    ] = None,
    start: Annotated[date | None, Query(description="First day (inclusive)", examples=["2025-01-01"])] = None,
    end: Annotated[date | None, Query(description="Last day (inclusive)", examples=["2025-12-31"])] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="json or csv", examples=["csv"])
    ] = None,
) -> Response:
    """The daily per-site values the indicators were computed from: units, source, product version and the
    Copernicus attribution (or the synthetic-data notice) of each variable."""
    store.get_site(site_id)
    if start and end and start > end:
        raise ProblemError(422, "start must not be after end", errors=[{"field": "query.start"}])
    where = variable_sources()
    names = [n.strip() for part in (name or []) for n in part.split(",") if n.strip()] or list(where)
    unknown = [n for n in names if n not in where]
    if unknown:
        raise ProblemError(
            404, f"unknown variable(s) {unknown}; known: {sorted(where)}", errors=[{"field": "query.name"}]
        )
    by_source: dict[str, list[str]] = {}
    for n in dict.fromkeys(names):
        by_source.setdefault(where[n], []).append(n)
    out: list[VariableSeries] = []
    for source, wanted in by_source.items():
        cube = variables.read(source, [site_id], start, end, wanted)
        synthetic = str(cube.attrs.get("synthetic", "false")).lower() == "true"
        times = pd.to_datetime(cube["time"].values) if "time" in cube.coords else pd.DatetimeIndex([])
        year = times[-1].year if len(times) else date.today().year
        for n in wanted:
            if n not in cube.data_vars or cube.sizes.get("site", 0) == 0:
                values = np.array([])
                units = ""
                times_n = pd.DatetimeIndex([])
            else:
                values = cube[n].sel(site=site_id).values
                units = str(cube[n].attrs.get("units", ""))
                times_n = times
            keep = ~np.isnan(values.astype(float)) if len(values) else np.array([], dtype=bool)
            out.append(
                VariableSeries(
                    name=n,
                    units=units,
                    source=source,
                    product=str(cube.attrs.get("product", "")) or SOURCES[source].product,
                    product_version=str(cube.attrs.get("product_version", "")),
                    synthetic=synthetic,
                    attribution=_attribution(source, str(cube.attrs.get("attribution", "")), synthetic, year),
                    values=[
                        DailyValue(time=t.date(), value=float(v))
                        for t, v, k in zip(times_n, values, keep, strict=True)
                        if k
                    ],
                )
            )
    if (format or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")) == "csv":

        def rows():
            yield "site,time,variable,value,units,source,product,product_version,synthetic,attribution\n"
            for series in out:
                meta = pd.DataFrame(
                    {
                        "site": site_id,
                        "time": [v.time for v in series.values],
                        "variable": series.name,
                        "value": [v.value for v in series.values],
                        "units": series.units,
                        "source": series.source,
                        "product": series.product,
                        "product_version": series.product_version,
                        "synthetic": series.synthetic,
                        "attribution": series.attribution,
                    }
                )
                buf = io.StringIO()
                meta.to_csv(buf, index=False, header=False)
                yield buf.getvalue()

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{site_id}_variables.csv"'},
        )
    body = SiteVariables(site=site_id, start=start, end=end, variables=out)
    return Response(body.model_dump_json(), media_type="application/json")
