"""A compact status of every site (current risk level and alerts): what the dashboard's map colours by."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import shapely
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from shapely.geometry import mapping

from api.auth import ReaderDep
from api.deps import PageDep, StoreDep
from api.errors import COMMON_ERRORS
from api.routes.timeseries import series_attribution
from api.schemas import Link
from indicators import LEVELS, NO_DATA, level_name
from sites.geometry import buffer_geometries

router = APIRouter(prefix="/api/v1", tags=["sites"], responses=COMMON_ERRORS)

#: Buffer outlines are simplified to this tolerance (degrees, about 10 m): the map needs no more.
BUFFER_TOLERANCE_DEG = 1e-4


class SiteStatus(BaseModel):
    """One site's current risk: the highest level among the newest values of its indicators, and alerts."""

    id: str = Field(examples=["athens"])
    name: str = Field(examples=["Acropolis, Athens"])
    country: str | None = Field(None, examples=["GR"])
    level: str = Field(
        description="Highest level among the newest value of every indicator "
        "(none, low, moderate, high, severe), or no_data when no indicator has a value.",
        examples=["high"],
    )
    level_indicators: list[str] = Field(
        description="Indicators whose newest value is at `level` (empty when `level` is none or no_data).",
        examples=[["hot_days"]],
    )
    latest_period: date | None = Field(
        description="Start of the newest period among the newest values.", examples=["2026-11-01"]
    )
    open_alerts: int = Field(
        ge=0,
        description="Number of open alerts that need action now (observed and forecast). Open "
        "climate-projection planning alerts are not among them: they are counted in `planning_alerts`.",
        examples=[2],
    )
    open_alert_severity: str | None = Field(
        description="Highest severity among the open alerts that need action now (None when there are none).",
        examples=["high"],
    )
    acknowledged_alerts: int = Field(
        ge=0,
        description="Number of acknowledged alerts that need action (seen, not yet resolved); acknowledged "
        "planning alerts are counted in `acknowledged_planning_alerts`.",
        examples=[0],
    )
    planning_alerts: int = Field(
        ge=0,
        description="Number of open climate-projection planning alerts (kind projected): risk projected "
        "decades ahead under an emission scenario, for planning, never pushed to subscribers. Counted apart "
        "from `open_alerts`.",
        examples=[1],
    )
    planning_alert_severity: str | None = Field(
        description="Highest severity among the open planning alerts (None when there are none).",
        examples=["severe"],
    )
    acknowledged_planning_alerts: int = Field(
        ge=0, description="Number of acknowledged climate-projection planning alerts.", examples=[0]
    )
    buffer_m: float = Field(description="Buffer around the site polygon, metres.", examples=[1000.0])
    buffer: dict[str, Any] | None = Field(
        description="GeoJSON geometry (EPSG:4326) of the polygon grown by `buffer_m`, simplified to about "
        "10 m; None without a buffer.",
    )
    sources: list[str] = Field(
        description="Copernicus sources of the newest values.", examples=[["era5_land", "cams_europe"]]
    )
    synthetic: bool = Field(description="Whether the newest values are synthetic demo data.")
    attribution: str = Field(description="Copernicus licence attribution of the newest values' sources.")


class StatusPublic(BaseModel):
    """The status of a page of sites, ordered by id."""

    levels: list[str] = Field(
        default=[*LEVELS, NO_DATA], description="Risk levels in increasing severity, then no_data."
    )
    numberMatched: int  # noqa: N815 - OGC API Features names
    numberReturned: int  # noqa: N815
    sites: list[SiteStatus]
    synthetic: bool = Field(description="Whether any site's newest values are synthetic demo data.")
    attribution: str = Field(description="Copernicus licence attribution of every source on this page.")
    links: list[Link]


_EXAMPLE = {
    "levels": [*LEVELS, NO_DATA],
    "numberMatched": 1,
    "numberReturned": 1,
    "sites": [
        {
            "id": "athens",
            "name": "Acropolis, Athens",
            "country": "GR",
            "level": "high",
            "level_indicators": ["hot_days"],
            "latest_period": "2026-11-01",
            "open_alerts": 2,
            "open_alert_severity": "high",
            "acknowledged_alerts": 0,
            "planning_alerts": 1,
            "planning_alert_severity": "severe",
            "acknowledged_planning_alerts": 0,
            "buffer_m": 1000.0,
            "buffer": {"type": "Polygon", "coordinates": [[[23.71, 37.96], [23.74, 37.96], [23.74, 37.98]]]},
            "sources": ["era5_land"],
            "synthetic": True,
            "attribution": "SYNTHETIC demo data, not Copernicus data. Real data would carry: …",
        }
    ],
    "synthetic": True,
    "attribution": "SYNTHETIC demo data, not Copernicus data. Real data would carry: …",
    "links": [{"href": "http://localhost:8000/api/v1/status", "rel": "self", "type": "application/json"}],
}


def _sources(frame: pd.DataFrame) -> list[str]:
    """Distinct source ids of these rows (a combined source `a+b` counts as both), in first-seen order."""
    out: list[str] = []
    for src in frame["source"].dropna().astype(str):
        for part in src.split("+"):
            if part and part not in out:
                out.append(part)
    return out


def _attribution(frame: pd.DataFrame) -> tuple[list[str], bool, str]:
    if frame.empty:
        return [], False, ""
    sources = _sources(frame)
    synthetic = bool(frame["synthetic"].astype(bool).any())
    year = pd.Timestamp(frame["period_start"].max()).year
    return sources, synthetic, series_attribution("+".join(sources), synthetic, year)


#: Alert kinds of climate-projection planning (decades ahead, never pushed to subscribers): counted apart
#: from the alerts that need action now.
PLANNING_KINDS = ("projected",)


def _alert_tallies(counts: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per site, the number (`<group>_n`) and highest level (`<group>_level`) of its unresolved alerts in
    four groups: `open` and `acknowledged` alerts that need action now, apart from `planning_open` and
    `planning_acknowledged` ones. One group-by over the page's counts, not a mask per site."""
    if counts.empty:
        return {}
    planning = counts["kind"].isin(PLANNING_KINDS)
    groups = ("planning_" + counts["status"]).where(planning, counts["status"])
    wide = (
        counts.assign(group=groups)
        .groupby(["site_id", "group"], sort=False)
        .agg(n=("n", "sum"), level=("level", "max"))
        .unstack("group")
    )
    wide.columns = [f"{group}_{stat}" for stat, group in wide.columns]
    return wide.to_dict("index")


def _tally_count(tally: dict[str, float], group: str) -> int:
    """How many alerts of the group a site's tally holds (0 when none)."""
    n = tally.get(f"{group}_n")
    return 0 if n is None or pd.isna(n) else int(n)


def _tally_severity(tally: dict[str, float], group: str) -> str | None:
    """The highest severity among the group's alerts in a site's tally (None when none)."""
    level = tally.get(f"{group}_level")
    return None if level is None or pd.isna(level) else level_name(int(level))


def _split(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each site, grouped once (not one boolean mask per site)."""
    return {site: rows for site, rows in frame.groupby("site_id", sort=False)} if len(frame) else {}


@router.get(
    "/status",
    summary="Current risk level and alert counts of every site (the dashboard map)",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
def read_status(request: Request, store: StoreDep, _: ReaderDep, page: PageDep) -> StatusPublic:
    """Per site, paged by id: the highest level among the newest values of its indicators, the number and
    highest severity of open alerts that need action now and, apart, of open climate-projection planning
    alerts, the buffer outline, and the sources and attribution of those values."""
    sites, total = store.list_sites(limit=page.limit, offset=page.offset)
    ids = [s.id for s in sites]
    latest = store.latest_levels(ids) if ids else pd.DataFrame()
    counts = store.unresolved_alert_counts(ids) if ids else pd.DataFrame()
    buffers = buffer_geometries([s.geometry for s in sites], [s.buffer_m for s in sites])
    by_site = _split(latest)
    tallies = _alert_tallies(counts)
    out = []
    for site, grown in zip(sites, buffers, strict=True):
        rows = by_site.get(site.id, latest.iloc[:0])
        valid = rows[rows["level"] >= 0] if len(rows) else rows
        top = int(valid["level"].max()) if len(valid) else -1
        at_top = sorted(valid.loc[valid["level"] == top, "indicator_id"]) if top > 0 else []
        tally = tallies.get(site.id, {})
        sources, synthetic, attr = _attribution(rows)
        out.append(
            SiteStatus(
                id=site.id,
                name=site.name,
                country=site.country,
                level=level_name(top),
                level_indicators=at_top,
                latest_period=pd.Timestamp(rows["period_start"].max()).date() if len(rows) else None,
                open_alerts=_tally_count(tally, "open"),
                open_alert_severity=_tally_severity(tally, "open"),
                acknowledged_alerts=_tally_count(tally, "acknowledged"),
                planning_alerts=_tally_count(tally, "planning_open"),
                planning_alert_severity=_tally_severity(tally, "planning_open"),
                acknowledged_planning_alerts=_tally_count(tally, "planning_acknowledged"),
                buffer_m=site.buffer_m,
                buffer=mapping(shapely.simplify(grown, BUFFER_TOLERANCE_DEG)) if site.buffer_m > 0 else None,
                sources=sources,
                synthetic=synthetic,
                attribution=attr,
            )
        )
    sources, synthetic, attr = _attribution(latest)
    links = [Link(href=str(request.url), rel="self", type="application/json")]
    if page.offset + len(sites) < total:
        nxt = request.url.include_query_params(limit=page.limit, offset=page.offset + page.limit)
        links.append(Link(href=str(nxt), rel="next", type="application/json"))
    return StatusPublic(
        numberMatched=total,
        numberReturned=len(out),
        sites=out,
        synthetic=synthetic,
        attribution=attr,
        links=links,
    )
