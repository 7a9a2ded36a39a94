"""Sites as OGC API Features-style GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.auth import ReaderDep
from api.deps import PageDep, StoreDep
from api.errors import COMMON_ERRORS, ProblemError, problem_responses
from indicators import level_name

router = APIRouter(prefix="/api/v1", tags=["sites"], responses={**COMMON_ERRORS, **problem_responses(400)})
SiteIdPath = Annotated[str, Path(description="Site id", examples=["athens"])]
GEOJSON = "application/geo+json"


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(x) for x in bbox.split(","))
    except ValueError:
        raise ProblemError(  # noqa: B904 - the parse error adds nothing for the client
            422, "bbox must be four numbers: west,south,east,north", errors=[{"field": "query.bbox"}]
        )
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ProblemError(
            422,
            "bbox must satisfy -180 <= west <= east <= 180 and -90 <= south <= north <= 90",
            errors=[{"field": "query.bbox"}],
        )
    return w, s, e, n


@router.get(
    "/sites",
    summary="List sites (GeoJSON FeatureCollection)",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}, "description": "A GeoJSON FeatureCollection of sites."}},
)
def list_sites(
    request: Request,
    store: StoreDep,
    _: ReaderDep,
    page: PageDep,
    bbox: Annotated[
        str | None, Query(description="west,south,east,north in EPSG:4326", examples=["-10,35,30,60"])
    ] = None,
    country: Annotated[
        str | None, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["IT"])
    ] = None,
    material: Annotated[
        str | None,
        Query(max_length=100, description="Only sites made of this material", examples=["marble"]),
    ] = None,
    heritage_type: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only sites of this heritage type (case-insensitive)",
            examples=["monument"],
        ),
    ] = None,
) -> JSONResponse:
    """Registered heritage sites, paged with `limit`/`offset`; feature `id` is the site id."""
    sites, total = store.find_sites(
        parse_bbox(bbox), country, material, heritage_type, page.limit, page.offset
    )
    query = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}
    links: list[dict[str, Any]] = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if page.offset + len(sites) < total:
        nxt = request.url.include_query_params(**query, limit=page.limit, offset=page.offset + page.limit)
        links.append({"href": str(nxt), "rel": "next", "type": GEOJSON})
    if page.offset > 0:
        prev = request.url.include_query_params(
            **query, limit=page.limit, offset=max(0, page.offset - page.limit)
        )
        links.append({"href": str(prev), "rel": "prev", "type": GEOJSON})
    body = {
        "type": "FeatureCollection",
        "numberMatched": total,
        "numberReturned": len(sites),
        "features": [s.to_feature() for s in sites],
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON)


@router.get(
    "/sites/{site_id}",
    summary="One site (GeoJSON Feature) with the latest level of each indicator",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}, **problem_responses(404)},
)
def get_site(site_id: SiteIdPath, request: Request, store: StoreDep, _: ReaderDep) -> JSONResponse:
    """One site; `properties.latest` holds the newest value and level of every indicator."""
    site = store.get_site(site_id)
    feature = site.to_feature()
    latest = store.latest_levels([site_id])
    feature["properties"]["latest"] = {
        row.indicator_id: {
            "period_start": row.period_start.isoformat(),
            "value": None if row.value != row.value else row.value,
            "level": level_name(int(row.level)),
            "material": row.material,
        }
        for row in latest.itertuples()
    }
    feature["links"] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": str(request.url_for("list_alerts").include_query_params(site=site_id)), "rel": "alerts"},
    ]
    return JSONResponse(feature, media_type=GEOJSON)
